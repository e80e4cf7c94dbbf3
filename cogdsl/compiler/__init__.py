"""The compiler: the passes of :mod:`~cogdsl.compiler.pipeline` (``PASSES``), each in its own module:
:mod:`~cogdsl.compiler.graph`, :mod:`~cogdsl.compiler.validate` (with :mod:`~cogdsl.compiler.groups`),
:mod:`~cogdsl.compiler.task_sizes`, :mod:`~cogdsl.compiler.shapes`, :mod:`~cogdsl.compiler.footprint`,
:mod:`~cogdsl.compiler.lower`; and :mod:`~cogdsl.compiler.explain` (``cogdsl compile --explain``)."""
