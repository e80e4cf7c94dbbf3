"""The functional ops: memory addressing and read/write as pure, differentiable equations.

Every op takes and returns torch tensors, batch first, float32 or float64, and is
differentiable in every input but index sets and noise (SAM's chosen slots, the noise and the
one-hot of :func:`sample_slots`). Training tricks (stop-gradients and the like) belong to the
block that calls an op, never inside it.

An op is declared once, next to its reference equation, by :func:`cogdsl.ops.declare.op`: the
NTM's in :mod:`cogdsl.ops.ntm`, the DNC's in :mod:`cogdsl.ops.dnc`, attention's in
:mod:`cogdsl.ops.attention`, SAM's in :mod:`cogdsl.ops.sam`, the Dynamic NTM's in
:mod:`cogdsl.ops.dntm`. Each function here is the op's public face: it checks its arguments'
shapes (Python only, no device sync; a combination of shapes that passed once is remembered, so a
training loop pays for a set lookup, not the check), then calls the implementation chosen by
:mod:`cogdsl.ops.backend`: ``"reference"`` (the plain equation), ``"torch"`` (the PyTorch fast
path: the hand-written backwards of :mod:`cogdsl.ops.ntm_grad` where there are some, else the
reference) or ``"triton"`` (a kernel from ``cogdsl.kernels``); ``"auto"`` picks Triton for CUDA
tensors when the op has a kernel, else ``"torch"``. Force one with
``with cogdsl.ops.use_backend("torch"):`` or ``COGDSL_BACKEND=torch``.

Shape letters: B batch, H heads, N memory slots, W slot width, K = 2s+1 shift offsets
(−s..s); for attention over a sequence, S elements, A score units per head, D key width
(for a memory network hop's read, W is the value width and D the key and query width).
"""

from __future__ import annotations

from cogdsl import kernels as _kernels  # noqa: F401  (registers the "triton" backend, lazily)
from cogdsl.ops import attention as _attention
from cogdsl.ops import dnc as _dnc
from cogdsl.ops import dntm as _dntm
from cogdsl.ops import ntm as _ntm
from cogdsl.ops import ntm_grad as _ntm_grad  # noqa: F401  (registers the hand-written "torch" backwards)
from cogdsl.ops import sam as _sam
from cogdsl.ops.backend import (
    BACKENDS,
    BackendUnavailableError,
    current_backend,
    register,
    use_backend,
)
from cogdsl.ops.declare import public as _public

__all__ = [
    "BACKENDS",
    "SIMILARITIES",
    "BackendUnavailableError",
    "additive_attention",
    "address",
    "content_weights",
    "current_backend",
    "dnc_allocation",
    "dnc_directional",
    "dnc_link",
    "dnc_usage",
    "hop_read",
    "interpolate",
    "lru_content_weights",
    "memory_step",
    "ntm_address",
    "ntm_memory_step",
    "read",
    "register",
    "sam_read",
    "sam_write",
    "sam_write_weights",
    "sample_slots",
    "sharpen",
    "shift",
    "use_backend",
    "write",
]

SIMILARITIES = _ntm.SIMILARITIES

# -- the NTM's addressing and read/write (Graves et al. 2014) ------------------------------------
content_weights = _public(_ntm.content_weights)
interpolate = _public(_ntm.interpolate)
shift = _public(_ntm.shift)
sharpen = _public(_ntm.sharpen)
ntm_address = _public(_ntm.ntm_address)
read = _public(_ntm.read)
write = _public(_ntm.write)
ntm_memory_step = _public(_ntm.ntm_memory_step)
address = _public(_ntm.address)  # any subset of ntm_address's stages
memory_step = _public(_ntm.memory_step)  # ntm_memory_step with address's stages

# -- the DNC's memory management (Graves et al. 2016, Methods) -----------------------------------
dnc_usage = _public(_dnc.dnc_usage)
dnc_allocation = _public(_dnc.dnc_allocation)
dnc_link = _public(_dnc.dnc_link)
dnc_directional = _public(_dnc.dnc_directional)

# -- attention over a sequence, and a memory network hop's read -----------------------------------
additive_attention = _public(_attention.additive_attention)
hop_read = _public(_attention.hop_read)

# -- Sparse Access Memory (Rae et al. 2016): cogdsl.ops.sam --------------------------------------
sam_write_weights = _public(_sam.sam_write_weights)
sam_write = _public(_sam.sam_write)
sam_read = _public(_sam.sam_read)

# -- the Dynamic NTM's lru and hard addressing (Gulcehre et al. 2016): cogdsl.ops.dntm ---------------
lru_content_weights = _public(_dntm.lru_content_weights)
sample_slots = _public(_dntm.sample_slots)
