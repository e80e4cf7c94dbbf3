"""docs/reference.md holds the registries' own output, the README's examples are real and it stays a
short page, and every relative link in README.md and docs/ leads to a file (and heading) that exists."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import cogdsl
from cogdsl.docs import reference, task_reference
from cogdsl.docs_sync import END, GENERATED, START, TASKS_END, TASKS_START, with_reference

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
REFERENCE_MD = ROOT / "docs" / "reference.md"
README_MAX_LINES = 250


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


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


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


# -- links -----------------------------------------------------------------------------------------

INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")


def markdown_files() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


def prose_lines(text: str) -> Iterator[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    fence = ""
    for line in text.splitlines():
        stripped = line.lstrip()
        if fence:
            if stripped.startswith(fence):
                fence = ""
            continue
        if stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
            continue
        yield line


def links(text: str) -> list[str]:
    """Every link target of a Markdown text: inline links and images, and link definitions; what code
    spans and fenced blocks hold is code, not links."""
    found = []
    for line in prose_lines(text):
        prose = CODE_SPAN.sub("code", line)
        found += INLINE_LINK.findall(prose)
        found += DEFINITION.findall(prose)
    return found


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces as hyphens,
    a repeated heading numbered -1, -2 ..."""
    seen: dict[str, int] = {}
    for line in prose_lines(text):
        match = HEADING.match(line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        if count:
            seen[f"{slug}-{count}"] = 1
    return set(seen)


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with each relative link of the Markdown file at ``path`` in the repository at ``root``."""
    problems = []
    for target in links(path.read_text(encoding="utf-8")):
        if SCHEME.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}: ({target})"
        if not resolved.is_relative_to(root):
            problems.append(f"{where} leaves the repository")
        elif not resolved.exists():
            problems.append(f"{where} points to {resolved.relative_to(root)}, which does not exist")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text(encoding="utf-8")):
            problems.append(f"{where} names no heading of {resolved.relative_to(root)}")
    return problems


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    """The check itself, on a small repository: a missing file, a missing heading and a link out of the
    repository are caught; what code spans and fenced blocks hold is not a link; good links pass."""
    root = tmp_path / "repo"
    (root / "docs" / "results").mkdir(parents=True)
    (root / "README.md").write_text("# cogdsl\n\n## Python\n\n```python\n# not a heading\n```\n", encoding="utf-8")
    (root / "docs" / "picture.png").write_bytes(b"")
    (root / "docs" / "results" / "other.md").write_text("# Other\n", encoding="utf-8")
    page = root / "docs" / "results" / "page.md"
    good = ("# Title\n\n[ok](other.md) ![img](../picture.png) [top](#title) [api](../../README.md#python) "
            "[web](https://example.org/x.md) `[code](missing.md)`\n\n```\n[fenced](missing_too.md)\n```\n")
    page.write_text(good, encoding="utf-8")
    assert broken_links(page, root) == []
    for bad, says in [("[gone](no_such_page.md)", "does not exist"),
                      ("![gone](../no_such_picture.png)", "does not exist"),
                      ("[heading](../../README.md#not-a-heading)", "names no heading"),
                      ("[heading](#not-a-heading)", "names no heading"),
                      ("[up](../../../elsewhere.md)", "leaves the repository")]:
        page.write_text(f"{good}\n{bad}\n", encoding="utf-8")
        (problem,) = broken_links(page, root)
        assert says in problem, problem


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    """No page in docs/ is an orphan: following relative links from README.md reaches each one."""
    pages = set(markdown_files())
    reached, todo = {README}, [README]
    while todo:
        page = todo.pop()
        for target in links(page.read_text(encoding="utf-8")):
            file_part = target.partition("#")[0]
            if SCHEME.match(target) or not file_part:
                continue
            found = (page.parent / file_part).resolve()
            if found in pages and found not in reached:
                reached.add(found)
                todo.append(found)
    assert sorted(str(p.relative_to(ROOT)) for p in pages - reached) == []
