"""``cogdsl bench``: the NTM memory step, the DNC step, additive attention, a memory network hop's read and a whole
training step, timed on every execution path.

One file per section, each a table with one row per (size, path), run in the order of
:data:`cogdsl.bench.command.SECTION_LIST`:

* :mod:`~cogdsl.bench.memory_step` -- :func:`cogdsl.ops.ntm_memory_step`, 1 read and 1 write head;
* :mod:`~cogdsl.bench.dnc_step` -- :meth:`cogdsl.blocks.dnc.DNCGroup.step`, 4 read heads and 1 write head;
* :mod:`~cogdsl.bench.additive_attention` -- :func:`cogdsl.ops.additive_attention` (CUDA only);
* :mod:`~cogdsl.bench.hop_read` -- :func:`cogdsl.ops.hop_read`, a MemN2N hop's read (CUDA only);
* :mod:`~cogdsl.bench.training_step` -- a spec compiled by :func:`cogdsl.compile`, trained as ``cogdsl train``
  trains it.

Each times the forward alone (under ``torch.no_grad``) and the forward plus the backward of a fixed random
projection of its outputs, on these paths:

* ``triton`` -- the fused Triton kernels (CUDA only; Triton's interpreter is for testing);
* ``eager`` -- cogdsl's ``torch`` backend (PyTorch ops, backward passes written by hand);
* ``eager-reference`` -- the plain autograd equations, :mod:`cogdsl.ops.ntm` (memory step only);
* ``compiled-reference`` -- ``torch.compile`` of the reference.

:mod:`~cogdsl.bench.harness` times every path the same way (a median after warm-up calls, CUDA events on a GPU)
and turns the bytes each section says must move into GB/s, on CUDA also as a percentage of the device's copy
bandwidth; :mod:`~cogdsl.bench.command` runs the sections and prints the tables.
"""

from cogdsl.bench.additive_attention import (
    ADDITIVE_ATTENTION,
    ATTENTION_BYTES_NOTE,
    ATTENTION_HEADS,
    ATTENTION_NEEDS_GPU,
    DEFAULT_ATTENTION_LENGTHS,
    DEFAULT_ATTENTION_WIDTHS,
    additive_attention_bytes,
    additive_attention_inputs,
    additive_attention_paths,
    bench_additive_attention,
)
from cogdsl.bench.command import (
    DEFAULT_SPEC,
    PATH_NOTES,
    SECTION_LIST,
    SECTIONS,
    SIZE_COLUMNS,
    BenchOptions,
    BenchResult,
    bench,
    bench_command,
    options_from_args,
    render,
    render_table,
)
from cogdsl.bench.dnc_step import (
    DEFAULT_DNC_SLOTS,
    DNC_BYTES_NOTE,
    DNC_READS,
    DNC_SPEC,
    DNC_STEP,
    DNC_WRITES,
    bench_dnc_step,
    dnc_group,
    dnc_step,
    dnc_step_backends,
    dnc_step_bytes,
    dnc_step_inputs,
)
from cogdsl.bench.harness import (
    COMPILED_REFERENCE,
    COPY_BYTES,
    EAGER,
    EAGER_REFERENCE,
    NEEDS_GPU,
    TRITON,
    Row,
    Section,
    Timing,
    add_ratios,
    copy_bandwidth_gbps,
    cpu_model,
    machine,
    median_ms,
)
from cogdsl.bench.hop_read import (
    DEFAULT_HOP_SLOTS,
    DEFAULT_HOP_WIDTHS,
    HOP_BYTES_NOTE,
    HOP_NEEDS_GPU,
    HOP_READ,
    bench_hop_read,
    hop_read_bytes,
    hop_read_inputs,
    hop_read_paths,
)
from cogdsl.bench.memory_step import (
    BYTES_NOTE,
    DEFAULT_SLOTS,
    HEADS,
    MEMORY_STEP,
    SHIFTS,
    WRITE_HEADS,
    bench_memory_step,
    memory_step_bytes,
    memory_step_inputs,
)
from cogdsl.bench.training_step import (
    TRAINING_STEP,
    bench_training_step,
    memory_sizes,
    spec_with_slots,
)

#: Every public name of the module this package replaced, so that its importers need no change.
__all__ = [
    "ADDITIVE_ATTENTION", "ATTENTION_BYTES_NOTE", "ATTENTION_HEADS", "ATTENTION_NEEDS_GPU", "BYTES_NOTE",
    "COMPILED_REFERENCE", "COPY_BYTES", "DEFAULT_ATTENTION_LENGTHS", "DEFAULT_ATTENTION_WIDTHS",
    "DEFAULT_DNC_SLOTS", "DEFAULT_HOP_SLOTS", "DEFAULT_HOP_WIDTHS", "DEFAULT_SLOTS", "DEFAULT_SPEC",
    "DNC_BYTES_NOTE", "DNC_READS", "DNC_SPEC", "DNC_STEP", "DNC_WRITES", "EAGER", "EAGER_REFERENCE", "HEADS",
    "HOP_BYTES_NOTE", "HOP_NEEDS_GPU", "HOP_READ", "MEMORY_STEP", "NEEDS_GPU", "PATH_NOTES", "SECTIONS",
    "SECTION_LIST", "SHIFTS", "SIZE_COLUMNS", "TRAINING_STEP", "TRITON", "WRITE_HEADS", "BenchOptions",
    "BenchResult", "Row", "Section", "Timing", "add_ratios", "additive_attention_bytes",
    "additive_attention_inputs", "additive_attention_paths", "bench", "bench_additive_attention", "bench_command",
    "bench_dnc_step", "bench_hop_read", "bench_memory_step", "bench_training_step", "copy_bandwidth_gbps",
    "cpu_model", "dnc_group", "dnc_step", "dnc_step_backends", "dnc_step_bytes", "dnc_step_inputs",
    "hop_read_bytes", "hop_read_inputs", "hop_read_paths", "machine", "median_ms", "memory_sizes",
    "memory_step_bytes", "memory_step_inputs", "options_from_args", "render", "render_table", "spec_with_slots",
]
