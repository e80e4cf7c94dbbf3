"""Training: the pieces of a run that are not the loop itself.

- :mod:`~cogdsl.training.devices`: ``--device auto|cpu|cuda|cuda:N`` resolved to a torch device
- :mod:`~cogdsl.training.signals`: Ctrl-C and SIGTERM ask the loop to stop and checkpoint
- :mod:`~cogdsl.training.distributed`: many processes under ``torchrun`` (DistributedDataParallel)
- :mod:`~cogdsl.training.streams`: where training batches come from (a task, or your own data) and
  how they reach the device
- :mod:`~cogdsl.training.tracking`: TensorBoard event files in the run folder

The loop, evaluation and the ``train``/``eval`` commands are in :mod:`cogdsl.training.loop`.
"""
