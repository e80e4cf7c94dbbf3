"""docs/reference.md holds the registries' own output, and the README's examples are real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cogdsl
from cogdsl.docs import reference, task_reference
from cogdsl.docs_sync import END, GENERATED, START, TASKS_END, TASKS_START, with_reference

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
REFERENCE_MD = ROOT / "docs" / "reference.md"


# -- the generated reference -----------------------------------------------------------------------


def test_reference_md_is_up_to_date() -> None:
    text = REFERENCE_MD.read_text(encoding="utf-8")
    assert START in text and END in text
    assert with_reference(text) == text, "run: python -m cogdsl.docs_sync docs/reference.md"
    block = text.split(START, 1)[1].split(END, 1)[0]
    assert block == f"\n{reference()}\n"


def test_the_reference_is_generated_into_one_place() -> None:
    readme = README.read_text(encoding="utf-8")
    assert START not in readme and END not in readme, "the reference tables live in docs/reference.md"
    assert "docs/reference.md" in GENERATED and (ROOT / "docs" / "reference.md").is_file()


def test_reference_lists_every_kind_stage_and_code() -> None:
    from cogdsl.blocks import REGISTRY
    from cogdsl.blocks.addressing import STAGES
    from cogdsl.errors import CODES

    text = reference()
    for name in [*REGISTRY, *STAGES]:
        assert f"| `{name}` |" in text
    for code in CODES:
        assert f"| {code} |" in text


def _stale(text: str, start: str, end: str) -> str:
    head, rest = text.split(start, 1)
    return f"{head}{start}\nstale\n{end}{rest.split(end, 1)[1]}"


def test_docs_sync_command_rewrites_stale_files(tmp_path: Path) -> None:
    """The command the tests' messages name, run from a repository root, regenerates both files."""
    (tmp_path / "docs").mkdir()
    real = {name: (ROOT / name).read_text(encoding="utf-8") for name in GENERATED}
    markers = {"docs/reference.md": (START, END), "docs/tasks.md": (TASKS_START, TASKS_END)}
    for name, text in real.items():
        (tmp_path / name).write_text(_stale(text, *markers[name]), encoding="utf-8")
        assert (tmp_path / name).read_text(encoding="utf-8") != text
    subprocess.run([sys.executable, "-m", "cogdsl.docs_sync", *GENERATED], cwd=tmp_path, check=True,
                   capture_output=True, text=True)
    for name, text in real.items():
        assert (tmp_path / name).read_text(encoding="utf-8") == text
    assert f"\n{task_reference()}\n" in real["docs/tasks.md"]


# -- the README ------------------------------------------------------------------------------------


def test_readme_opens_with_the_two_commands() -> None:
    readme = README.read_text(encoding="utf-8")
    block = readme.split("```bash", 1)[1].split("```", 1)[0]
    assert block.strip().splitlines()[0].startswith("make demo")
    assert block.strip().splitlines()[1].startswith("make test")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci


def test_readme_yaml_example_is_the_spec_in_the_library() -> None:
    readme = README.read_text(encoding="utf-8")
    example = readme.split("```yaml", 1)[1].split("```", 1)[0]
    spec_text = (ROOT / "specs" / "ntm_copy.yaml").read_text(encoding="utf-8")
    assert example.strip().splitlines()[1:] == spec_text.strip().splitlines()
    assert cogdsl.load(ROOT / "specs" / "ntm_copy.yaml").name == "ntm_copy"
