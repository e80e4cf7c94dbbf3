"""Pictures: learning curves (:mod:`~cogdsl.viz.curves`) and ``cogdsl trace`` (:mod:`~cogdsl.viz.trace` for
memories, :mod:`~cogdsl.viz.trace_qa` for memory networks, :mod:`~cogdsl.viz.trace_seq` for attention over a
sequence, :mod:`~cogdsl.viz.trace_visual` for models that look at an image)."""
