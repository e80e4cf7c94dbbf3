"""docs/tasks.md is the task registry's own output, and what it says about each task is true."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from cogdsl.docs import reference, task_reference
from cogdsl.docs_sync import TASKS_END, TASKS_START, synced, with_reference, with_task_reference
from cogdsl.tasks import TASKS, Batch, CopyTask, Task, TaskParam

ROOT = Path(__file__).resolve().parent.parent
TASKS_MD = ROOT / "docs" / "tasks.md"
INPUT = re.compile(r"`input NAME: (?:(\w+)\((?:vocab|size)=(\d+)\)|(\d+))`")
OUTPUT = re.compile(r"`output NAME: (\d+)`")


def sections(text: str) -> dict[str, str]:
    """Each task's entry in the reference, by task name."""
    parts = re.split(r"^### `([^`]+)`$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def printed_sizes(section: str) -> tuple[dict[str, int], int] | None:
    """The sizes a section prints for the default parameters, or None if it prints none."""
    line = next((s for s in section.splitlines() if s.startswith("- **Sizes:**")), "")
    if "With the default parameters:" not in line:
        return None
    defaults = line.split("With the default parameters:", 1)[1]
    kinds = {kind or "vector": int(size or plain) for kind, size, plain in INPUT.findall(defaults)}
    (output,) = OUTPUT.findall(defaults)
    return kinds, int(output)


class ThrowawayTask(Task):
    """A task that exists only in this test."""

    name: ClassVar[str] = "throwaway_probe"
    params: ClassVar[tuple[TaskParam, ...]] = (
        TaskParam("width", int, 5, minimum=1, doc="a width only this test knows"),
        TaskParam("min_len", int, 1, minimum=1, doc="shortest"),
        TaskParam("max_len", int, 4, minimum=1, doc="longest"),
    )
    constraints: ClassVar[tuple[tuple[str, str], ...]] = (("min_len", "max_len"),)
    length_params: ClassVar[tuple[str, str] | None] = ("min_len", "max_len")
    length_doc: ClassVar[str] = "L, the probe's length"
    sizes_doc: ClassVar[str] = "input width + 1; output width"
    width: int

    @property
    def input_size(self) -> int:
        return self.width + 1

    @property
    def output_size(self) -> int:
        return self.width

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        raise NotImplementedError


class UnbuildableTask(Task):
    """A task whose sizes come from a data file that is not there."""

    name: ClassVar[str] = "unbuildable_probe"
    params: ClassVar[tuple[TaskParam, ...]] = (TaskParam("path", str, "missing.txt", doc="the data file"),)
    sizes_doc: ClassVar[str] = "words input over the file's vocabulary; output the file's vocabulary"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        raise FileNotFoundError(self.config["path"])


# -- docs/tasks.md follows the registry ---------------------------------------------------------------


def test_tasks_md_is_up_to_date() -> None:
    text = TASKS_MD.read_text(encoding="utf-8")
    assert TASKS_START in text and TASKS_END in text
    assert with_task_reference(text) == text, "run: python -m cogdsl.docs_sync docs/tasks.md"
    assert synced(text) == text
    block = text.split(TASKS_START, 1)[1].split(TASKS_END, 1)[0]
    assert block == f"\n{task_reference()}\n"


def test_reference_has_every_registered_task_once() -> None:
    found = sections(task_reference())
    assert sorted(found) == sorted(TASKS)
    for name in TASKS:
        assert f"[`{name}`](#{name})" in task_reference()


def test_a_new_task_makes_tasks_md_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    text = TASKS_MD.read_text(encoding="utf-8")
    monkeypatch.setitem(TASKS, ThrowawayTask.name, ThrowawayTask)
    entry = sections(task_reference())[ThrowawayTask.name]
    assert "| `width` | int | `5` | an int >= 1 | a width only this test knows |" in entry
    assert "- **Constraints:** `min_len` <= `max_len`." in entry
    assert "L, the probe's length. Training draws it from [`min_len`, `max_len`]" in entry
    assert printed_sizes(entry) == ({"vector": 6}, 5)
    assert with_task_reference(text) != text


def test_a_changed_param_doc_makes_tasks_md_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    text = TASKS_MD.read_text(encoding="utf-8")
    bits, *rest = CopyTask.params
    monkeypatch.setattr(CopyTask, "params", (dataclasses.replace(bits, doc="a reworded doc"), *rest))
    assert "| `bits` | int | `8` | an int in [1, 4096] | a reworded doc |" in sections(task_reference())["copy"]
    assert with_task_reference(text) != text


def test_a_task_that_cannot_be_built_shows_its_sizes_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TASKS, UnbuildableTask.name, UnbuildableTask)
    entry = sections(task_reference())[UnbuildableTask.name]
    assert f"- **Sizes:** {UnbuildableTask.sizes_doc}." in entry
    assert printed_sizes(entry) is None
    # No length_doc and no length_params: the default sentence still says --len is refused.
    assert "- **--len L:** no lengths: --len is refused." in entry


# -- what the reference says is true -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_documents_its_sizes_and_lengths(name: str) -> None:
    cls = TASKS[name]
    assert cls.sizes_doc.strip(), f"{name}: set sizes_doc"
    if cls.length_params is not None:
        assert cls.length_doc.strip(), f"{name}: set length_doc"
        assert "--len is refused" not in cls.length_doc
    else:
        # `cogdsl eval` / `cogdsl trace` (load_trained) refuse --len for these tasks.
        assert "--len is refused" in cls.length_doc, f"{name}: its length_doc must say --len is refused"
        assert "--len is refused" in sections(task_reference())[name]


@pytest.mark.parametrize("name", [name for name, cls in TASKS.items() if not cls.reads_files])
def test_printed_default_sizes_are_the_tasks_own(name: str) -> None:
    task = TASKS[name]()
    printed = printed_sizes(sections(task_reference())[name])
    assert printed == (dict(task.input_kinds), task.output_size)


@pytest.mark.parametrize("name", [name for name, cls in TASKS.items() if cls.reads_files])
def test_tasks_that_read_files_print_no_default_sizes(name: str) -> None:
    entry = sections(task_reference())[name]
    assert printed_sizes(entry) is None  # their sizes are the files': no numbers with default parameters
    assert "file" in TASKS[name].sizes_doc


@pytest.mark.parametrize("name", list(TASKS))
def test_every_parameter_is_in_the_table(name: str) -> None:
    entry = sections(task_reference())[name]
    for param in TASKS[name].params:
        assert f"| `{param.name}` | {param.type_name} |" in entry
        assert param.describe_allowed().replace("|", "\\|") in entry


@pytest.mark.parametrize("spec", ["ntm_priority_sort.cog", "stn_digits.cog", "memn2n_babi.cog",
                                  "lstm_babi_steps.cog", "ntm_copy.cog", "encdec_reverse.cog"])
def test_eval_refuses_len_exactly_where_the_docs_say(spec: str, tmp_path: Path) -> None:
    """`cogdsl eval` / `cogdsl trace` (load_trained) refuse --len for a task with no length_params,
    and only for those: what each task's length_doc says."""
    import cogdsl
    from cogdsl.errors import UsageError
    from cogdsl.training.checkpoints import save_checkpoint, spec_fingerprint
    from cogdsl.training.loop import config_from_spec, load_trained

    path = ROOT / "specs" / spec
    loaded = cogdsl.load(path)
    name = config_from_spec(loaded, str(path)).task
    checkpoint = save_checkpoint(tmp_path / f"{loaded.name}_step_00000001.safetensors", model=cogdsl.compile(loaded),
                                 optimizer=None, meta={"model": loaded.name, "step": 1,
                                                       "spec_fingerprint": spec_fingerprint(loaded)})
    length = TASKS[name].min_length
    if TASKS[name].length_params is None:
        assert "--len is refused" in TASKS[name].length_doc
        with pytest.raises(UsageError, match="--len"):
            load_trained(str(path), str(checkpoint), length=length)
    else:
        assert "--len is refused" not in TASKS[name].length_doc
        _, task, _, _ = load_trained(str(path), str(checkpoint), length=length)
        assert task.name == name


# -- the commands ----------------------------------------------------------------------------------------


def test_docs_module_prints_both_references() -> None:
    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "cogdsl.docs", *args], cwd=ROOT, capture_output=True,
                              text=True, check=True)
        return done.stdout

    assert run("tasks") == task_reference() + "\n"
    assert run() == reference() + "\n"


def test_synced_keeps_the_reference_path() -> None:
    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert synced(text) == with_reference(text) == text
    stale = f"intro\n{TASKS_START}\nold\n{TASKS_END}\nend\n"
    assert synced(stale) == f"intro\n{TASKS_START}\n{task_reference()}\n{TASKS_END}\nend\n"
