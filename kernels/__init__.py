"""Triton kernels for cogdsl's ops, installed as ``cogdsl.kernels``.

Empty for now: every op runs the PyTorch reference in :mod:`cogdsl.ops`. The fused NTM
memory-step kernels land here, one file per family, with their forward, backward and
``torch.autograd.Function``.
"""
