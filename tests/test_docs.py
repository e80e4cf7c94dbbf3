"""The README's reference tables are the registries' own output, and its examples are real."""

from __future__ import annotations

from pathlib import Path

import cogdsl
from cogdsl.docs import reference
from cogdsl.docs_sync import with_reference

ROOT = Path(__file__).resolve().parent.parent


def test_readme_reference_block_is_up_to_date() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert with_reference(readme) == readme, "run: python -m cogdsl.docs_sync README.md"


def test_reference_lists_every_kind_stage_and_code() -> None:
    from cogdsl.blocks import REGISTRY
    from cogdsl.blocks.addressing import STAGES
    from cogdsl.errors import CODES

    text = reference()
    for name in [*REGISTRY, *STAGES]:
        assert f"| `{name}` |" in text
    for code in CODES:
        assert f"| {code} |" in text


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```bash", 1)[1].split("```", 1)[0]
    assert block.strip().splitlines()[0].startswith("make demo")
    assert block.strip().splitlines()[1].startswith("make test")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci


def test_readme_yaml_example_is_the_spec_in_the_library() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = readme.split("```yaml", 1)[1].split("```", 1)[0]
    spec_text = (ROOT / "specs" / "ntm_copy.yaml").read_text(encoding="utf-8")
    assert example.strip().splitlines()[1:] == spec_text.strip().splitlines()
    assert cogdsl.load(ROOT / "specs" / "ntm_copy.yaml").name == "ntm_copy"
