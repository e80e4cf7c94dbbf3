"""Tests for cogdsl.tasks.babi_format: hand-written stories in the official bAbI text format (in the
style of tasks 1, 8 and 19, written for these tests) read field by field, with CRLF and trailing
whitespace; the round trip through the writer for every generated task; located errors for bad
input; finding the official file names in a folder; and the reader's cache."""

from __future__ import annotations

import itertools
import os
import pickle
import re
from pathlib import Path

import pytest

from cogdsl.tasks import babi_format
from cogdsl.tasks.babi import BABI_TASKS, QA, generate, generate_split
from cogdsl.tasks.babi_format import (
    BABI_FILE,
    BabiFormatError,
    find_babi_files,
    format_babi,
    parse_babi,
    read_babi_file,
    tokenize,
    write_babi_file,
)

# Three stories like task 1 (questions interleaved: line numbers count questions, story indices do not),
# one like task 8 (lists: comma answers, "nothing") and one like task 19 (path finding: "n,s" answers,
# supporting numbers out of order). The official files put a space before the question's tab.
SNIPPET = (
    "1 Mary moved to the bathroom.\n"
    "2 John went to the hallway.\n"
    "3 Where is Mary? \tbathroom\t1\n"
    "4 Daniel went back to the hallway.\n"
    "5 Sandra moved to the garden.\n"
    "6 Where is Daniel? \thallway\t4\n"
    "7 John journeyed to the office.\n"
    "8 Mary travelled to the kitchen.\n"
    "9 Where is John? \toffice\t7\n"
    "1 Sandra picked up the apple there.\n"
    "2 Sandra took the football there.\n"
    "3 What is Sandra carrying? \tapple,football\t1 2\n"
    "4 Sandra discarded the apple.\n"
    "5 Sandra left the football.\n"
    "6 What is Sandra carrying? \tnothing\t4 5\n"
    "1 The kitchen is north of the office.\n"
    "2 The hallway is west of the garden.\n"
    "3 The garden is east of the kitchen.\n"
    "4 How do you go from the office to the garden? \tn,e\t3 1\n"
)

SNIPPET_QAS = [
    QA(
        story=(("mary", "moved", "to", "the", "bathroom"), ("john", "went", "to", "the", "hallway")),
        question=("where", "is", "mary"),
        answer="bathroom",
        supporting=(0,),
    ),
    QA(
        story=(
            ("mary", "moved", "to", "the", "bathroom"),
            ("john", "went", "to", "the", "hallway"),
            ("daniel", "went", "back", "to", "the", "hallway"),
            ("sandra", "moved", "to", "the", "garden"),
        ),
        question=("where", "is", "daniel"),
        answer="hallway",
        supporting=(2,),  # line 4 is the third statement
    ),
    QA(
        story=(
            ("mary", "moved", "to", "the", "bathroom"),
            ("john", "went", "to", "the", "hallway"),
            ("daniel", "went", "back", "to", "the", "hallway"),
            ("sandra", "moved", "to", "the", "garden"),
            ("john", "journeyed", "to", "the", "office"),
            ("mary", "travelled", "to", "the", "kitchen"),
        ),
        question=("where", "is", "john"),
        answer="office",
        supporting=(4,),  # line 7, after two questions
    ),
    QA(
        story=(("sandra", "picked", "up", "the", "apple", "there"), ("sandra", "took", "the", "football", "there")),
        question=("what", "is", "sandra", "carrying"),
        answer="apple,football",
        supporting=(0, 1),
    ),
    QA(
        story=(
            ("sandra", "picked", "up", "the", "apple", "there"),
            ("sandra", "took", "the", "football", "there"),
            ("sandra", "discarded", "the", "apple"),
            ("sandra", "left", "the", "football"),
        ),
        question=("what", "is", "sandra", "carrying"),
        answer="nothing",
        supporting=(2, 3),
    ),
    QA(
        story=(
            ("the", "kitchen", "is", "north", "of", "the", "office"),
            ("the", "hallway", "is", "west", "of", "the", "garden"),
            ("the", "garden", "is", "east", "of", "the", "kitchen"),
        ),
        question=("how", "do", "you", "go", "from", "the", "office", "to", "the", "garden"),
        answer="n,e",
        supporting=(0, 2),  # "3 1", sorted
    ),
]


# -- reading ----------------------------------------------------------------------------------------


def test_tokenize() -> None:
    assert tokenize("Mary moved to the bathroom.") == ("mary", "moved", "to", "the", "bathroom")
    assert tokenize("Where is Mary? ") == ("where", "is", "mary")
    assert tokenize("Jeff's mother-in-law -- 'quoted', 42!") == ("jeff's", "mother-in-law", "quoted", "42")
    assert tokenize(" ?. ") == ()


def test_snippet_field_by_field() -> None:
    qas = parse_babi(SNIPPET)
    assert len(qas) == len(SNIPPET_QAS) == 6
    for got, want in zip(qas, SNIPPET_QAS, strict=True):
        assert got.story == want.story
        assert got.question == want.question
        assert got.answer == want.answer
        assert got.supporting == want.supporting
        assert all(isinstance(s, tuple) for s in got.story)
    assert qas == SNIPPET_QAS
    # every supporting index points at a statement of the question's own story
    assert qas[1].story[qas[1].supporting[0]] == ("daniel", "went", "back", "to", "the", "hallway")
    assert qas[2].story[qas[2].supporting[0]] == ("john", "journeyed", "to", "the", "office")


def test_crlf_trailing_whitespace_blank_lines_and_bom() -> None:
    messy = "\ufeff" + "".join(
        line.rstrip("\n") + ("  \t" if i % 2 else " ") + "\r\n" + ("\r\n" if i % 5 == 4 else "")
        for i, line in enumerate(SNIPPET.splitlines(keepends=True))
    )
    assert "\r\n\r\n" in messy and "\t\r\n" in messy
    assert parse_babi(messy) == SNIPPET_QAS


def test_missing_or_empty_supporting_field() -> None:
    text = "1 Mary went to the kitchen.\n2 Is Mary in the kitchen?\tyes\n3 Where is Mary?\tkitchen\t\n"
    qas = parse_babi(text)
    assert [q.supporting for q in qas] == [(), ()]
    assert [q.answer for q in qas] == ["yes", "kitchen"]


def test_repeated_supporting_number_and_lone_cr() -> None:
    text = "1 Mary went to the kitchen.\r2 John went to the garden.\r3 Where is Mary?\tkitchen\t1 1\r"
    assert parse_babi(text) == [QA(
        (("mary", "went", "to", "the", "kitchen"), ("john", "went", "to", "the", "garden")),
        ("where", "is", "mary"), "kitchen", (0,),
    )]


def test_answer_is_lower_cased_and_stripped() -> None:
    qas = parse_babi("1 Mary took the Apple.\n2 What is Mary carrying?\t  Apple,Football \t1\n")
    assert qas[0].answer == "apple,football"


def test_question_before_any_statement() -> None:
    qas = parse_babi("1 Is anyone here?\tno\n2 Mary went to the garden.\n3 Where is Mary?\tgarden\t2\n")
    assert qas[0] == QA((), ("is", "anyone", "here"), "no", ())
    assert qas[1].story == (("mary", "went", "to", "the", "garden"),) and qas[1].supporting == (0,)


def test_read_file_crlf_bytes(tmp_path: Path) -> None:
    path = tmp_path / "qa1_single-supporting-fact_train.txt"
    path.write_bytes(SNIPPET.replace("\n", "\r\n").encode("utf-8"))
    assert read_babi_file(path) == SNIPPET_QAS
    assert read_babi_file(str(path)) == SNIPPET_QAS


# -- writing ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> dict[tuple[int, str], list[QA]]:
    return {(task, split): generate_split(task, "1k", split) for task in BABI_TASKS for split in ("train", "test")}


def test_round_trip_every_generated_task(generated: dict[tuple[int, str], list[QA]]) -> None:
    statement = re.compile(r"[1-9][0-9]* [A-Za-z][a-z]*( [a-z]+)*\.")
    question = re.compile(r"[1-9][0-9]* [A-Z][a-z]*( [a-z]+)*\? \t[a-z]+\t[1-9][0-9]*( [1-9][0-9]*)*")
    for (task, split), qas in generated.items():
        text = format_babi(qas)
        assert parse_babi(text) == qas, (task, split)
        lines = text.split("\n")
        assert lines[-1] == "" and all(lines[:-1])
        assert re.fullmatch(r"1 [A-Z][a-z]* .*\.", lines[0]), lines[0]
        questions = [line for line in lines if "\t" in line]
        assert len(questions) == len(qas)
        for line in questions:
            assert line.count("\t") == 2 and question.fullmatch(line), line
        for line in lines[:-1]:
            assert "\t" in line or statement.fullmatch(line), line
        # numbering: 1, 2, 3, ... within a story, back to 1 for the next one
        numbers = [int(line.split(" ", 1)[0]) for line in lines[:-1]]
        assert numbers[0] == 1
        assert all(b == a + 1 or b == 1 for a, b in itertools.pairwise(numbers))


def test_format_exact_text() -> None:
    text = format_babi(SNIPPET_QAS)
    # the same lines, but names not capitalised (a QA does not know them) and supporting written ascending
    assert text.lower() == SNIPPET.lower().replace("\t3 1\n", "\t1 3\n")
    lines = text.splitlines()
    assert lines[:3] == [
        "1 Mary moved to the bathroom.",
        "2 John went to the hallway.",
        "3 Where is mary? \tbathroom\t1",
    ]
    assert lines[11] == "3 What is sandra carrying? \tapple,football\t1 2"
    assert text.endswith("\n4 How do you go from the office to the garden? \tn,e\t1 3\n")


def test_format_continues_and_restarts_stories() -> None:
    qas = generate(15, 8, 0)  # two stories of four questions, no statements between questions
    text = format_babi(qas)
    assert [line.split(" ", 1)[0] for line in text.splitlines()] == [str(n) for n in range(1, 13)] * 2
    assert parse_babi(text) == qas


def test_write_and_read_file(tmp_path: Path, generated: dict[tuple[int, str], list[QA]]) -> None:
    qas = generated[2, "test"]
    path = tmp_path / "qa2_two-supporting-facts_test.txt"
    write_babi_file(qas, path)
    assert path.read_bytes() == format_babi(qas).encode("utf-8")
    assert read_babi_file(path) == qas
    write_babi_file(qas[:10], str(path))
    assert read_babi_file(path) == qas[:10]


@pytest.mark.parametrize(
    ("qa", "fragment"),
    [
        (QA((("Mary", "went"),), ("where", "is", "mary"), "kitchen", (0,)), "'Mary'"),
        (QA((("mary", "went."),), ("where", "is", "mary"), "kitchen", (0,)), "'went.'"),
        (QA(((),), ("where", "is", "mary"), "kitchen", ()), "no words"),
        (QA((("mary", "went"),), (), "kitchen", (0,)), "no words"),
        (QA((("mary", "went"),), ("where",), "the kitchen", (0,)), "'the kitchen'"),
        (QA((("mary", "went"),), ("where",), "Kitchen", (0,)), "'Kitchen'"),
        (QA((("mary", "went"),), ("where",), "", (0,)), "''"),
        (QA((("mary", "went"),), ("where",), "kitchen", (1,)), "(1,)"),
        (QA((("mary", "went"), ("john", "went")), ("where",), "kitchen", (1, 0)), "(1, 0)"),
    ],
)
def test_format_rejects_what_would_not_read_back(qa: QA, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        format_babi([qa])


def test_write_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no questions"):
        write_babi_file([], tmp_path / "x.txt")
    with pytest.raises(BabiFormatError, match="folder") as err:
        write_babi_file(SNIPPET_QAS, tmp_path)
    assert err.value.line == 0
    with pytest.raises(BabiFormatError, match="folder does not exist"):
        write_babi_file(SNIPPET_QAS, tmp_path / "missing" / "x.txt")


# -- errors -----------------------------------------------------------------------------------------

GOOD = "1 Mary moved to the bathroom.\n2 John went to the hallway.\n"

BAD: list[tuple[str, str, int, str]] = [
    # (id, text, line, a fragment of the message)
    ("gap", GOOD + "4 Where is Mary? \tbathroom\t1\n", 3, "line number 4 follows 2"),
    ("gap-after-blank", GOOD + "\n\n3 Where is Mary?\tbathroom\t1\n5 Mary went to the office.\n", 6,
     "line number 5 follows 3"),
    ("not-starting-at-1", "2 Mary moved to the bathroom.\n3 Where is Mary?\tbathroom\t2\n", 1,
     "the first line number is 2"),
    ("zero", "0 Mary moved to the bathroom.\n", 1, "expected a positive line number, found 0"),
    ("no-number", GOOD + "Mary went to the garden.\n", 3,
     "expected a line number at the start of the line, found 'Mary'"),
    ("number-only", GOOD + "3\n", 3, "expected a sentence after line number 3, found nothing"),
    ("no-tab", GOOD + "3 Where is Mary?\n", 3,
     "a question line needs 'question<TAB>answer<TAB>supporting line numbers', found 'Where is Mary?'"),
    ("spaces-not-tabs", GOOD + "3 Where is Mary?  bathroom  1\n", 3,
     "a question line needs 'question<TAB>answer<TAB>supporting line numbers', found 'Where is Mary?  bathroom  1'"),
    ("four-fields", GOOD + "3 Where is Mary?\tbathroom\t1\t2\n", 3, "found 4 tab-separated fields"),
    ("empty-question", GOOD + "3 ?\tbathroom\t1\n", 3, "expected the question's words"),
    ("empty-answer", GOOD + "3 Where is Mary? \t \t1\n", 3, "found an empty field"),
    ("answer-with-space", GOOD + "3 Where is Mary?\tthe bathroom\t1\n", 3,
     "found 'the bathroom' with whitespace inside"),
    ("answer-empty-item", GOOD + "3 What is Mary carrying?\tapple,,milk\t1\n", 3, "found an empty item"),
    ("support-question", GOOD + "3 Where is Mary?\tbathroom\t1\n4 Where is John?\thallway\t3\n", 4,
     "supporting fact 3 is a question line; supporting facts are earlier statements of this story "
     "(it has statements 1-2)"),
    ("support-later", GOOD + "3 Where is Mary?\tbathroom\t5\n4 Mary went to the office.\n5 Where?\toffice\t4\n",
     3, "supporting fact 5 is not an earlier statement of this story (it has statements 1-2)"),
    ("support-own-line", GOOD + "3 Where is Mary?\tbathroom\t3\n", 3, "supporting fact 3 is this question's own"),
    ("support-not-number", GOOD + "3 Where is Mary?\tbathroom\t1 x\n", 3,
     "expected supporting line numbers separated by spaces, found 'x'"),
    ("support-zero", GOOD + "3 Where is Mary?\tbathroom\t0\n", 3, "supporting fact 0 is not an earlier statement"),
    ("support-other-story", GOOD + "3 Where is Mary?\tbathroom\t1\n1 John went to the garden.\n"
     "2 Where is Mary?\tbathroom\t2\n", 5, "supporting fact 2 is this question's own line"),
    ("support-previous-story", GOOD + "3 Where is Mary?\tbathroom\t1\n1 John went to the garden.\n"
     "2 Where is John?\tgarden\t1\n3 Where is Mary?\tbathroom\t4\n", 6,
     "supporting fact 4 is not an earlier statement of this story (it has statements 1)"),
    ("support-interleaved", GOOD + "3 Where is Mary?\tbathroom\t1\n4 John went to the office.\n"
     "5 Where is John?\toffice\t6\n", 5, "(it has statements 1-2, 4)"),
    ("empty-statement", GOOD + "3 ...\n", 3, "expected a sentence with words after line number 3, found '...'"),
    ("statements-after-last-question", GOOD + "3 Where is Mary?\tbathroom\t1\n4 Mary went to the office.\n"
     "5 John went to the garden.\n", 5, "expected a question after statement 5, found the end of the story"),
    ("story-without-question", GOOD + "1 Mary went to the office.\n2 Where is Mary?\toffice\t1\n", 2,
     "expected a question after statement 2, found the end of the story (it starts at line 1)"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_text_is_located(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    with pytest.raises(BabiFormatError) as err:
        parse_babi(text, "story.txt")
    assert err.value.line == line
    assert str(err.value).startswith(f"story.txt:{line}: ")
    assert fragment in err.value.message
    # the same through a file, CRLF or not, with the path as given
    for ending in ("\n", "\r\n"):
        path = tmp_path / "qa1_x_train.txt"
        path.write_bytes(text.replace("\n", ending).encode())
        with pytest.raises(BabiFormatError) as err:
            read_babi_file(path)
        assert str(err.value).startswith(f"{path}:{line}: ")
        assert err.value.path == str(path) and fragment in err.value.message


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "qa1_x_train.txt"
    path.write_bytes(GOOD.encode() + b"3 Where is M\xe4ry?\tbathroom\t1\n")
    with pytest.raises(BabiFormatError) as err:
        read_babi_file(path)
    assert err.value.line == 3
    assert str(err.value).startswith(f"{path}:3: ")
    assert "expected UTF-8 text" in err.value.message and "e4" in err.value.message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b"", "found an empty file"), (b"\r\n \n\t\n", "found an empty file"), (GOOD.encode(), "found statements only")],
    ids=["empty", "blank-lines", "no-question"],
)
def test_whole_file_errors(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "qa1_x_test.txt"
    path.write_bytes(content)
    with pytest.raises(BabiFormatError) as err:
        read_babi_file(path)
    assert err.value.line == 0
    assert str(err.value) == f"{path}: {err.value.message}"
    assert fragment in err.value.message


def test_missing_file_and_folder(tmp_path: Path) -> None:
    missing = tmp_path / "qa1_nothing_train.txt"
    with pytest.raises(BabiFormatError) as err:
        read_babi_file(missing)
    assert (err.value.line, str(err.value)) == (0, f"{missing}: expected a bAbI file, found no such file")
    with pytest.raises(BabiFormatError) as err:
        read_babi_file(tmp_path)
    assert (err.value.line, str(err.value)) == (0, f"{tmp_path}: expected a bAbI file, found a folder")


def test_error_is_a_value_error_and_pickles() -> None:
    err = BabiFormatError("a.txt", 3, "expected x, found y")
    assert isinstance(err, ValueError) and str(err) == "a.txt:3: expected x, found y"
    assert str(BabiFormatError("a.txt", 0, "empty")) == "a.txt: empty"
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.line, back.message, str(back)) == ("a.txt", 3, "expected x, found y", str(err))


# -- folders ----------------------------------------------------------------------------------------


def test_babi_file_pattern() -> None:
    m = BABI_FILE.fullmatch("qa19_path-finding_valid.txt")
    assert m is not None and (m["task"], m["title"], m["split"]) == ("19", "path-finding", "valid")
    untitled = BABI_FILE.fullmatch("qa3_valid.txt")  # the release's en-valid folders name their files so
    assert untitled is not None and (untitled["task"], untitled["title"], untitled["split"]) == ("3", None, "valid")
    for name in ("qa1_single-supporting-fact_dev.txt", "qa0_x_train.txt", "qa1_dev.txt", "qa1_x_train.txt.bak",
                 "QA1_x_train.txt", "qa1_Single_train.txt", "notes.txt", "qa1__train.txt"):
        assert BABI_FILE.fullmatch(name) is None, name


def test_find_babi_files(tmp_path: Path) -> None:
    names = [
        "qa1_single-supporting-fact_train.txt", "qa1_single-supporting-fact_test.txt",
        "qa1_single-supporting-fact_valid.txt", "qa8_lists-sets_train.txt", "qa19_path-finding_test.txt",
        "qa2_two-supporting-facts_train.txt", "README.txt", "qa3_bad_dev.txt",
    ]
    for name in names:
        (tmp_path / name).write_text("1 Mary went to the kitchen.\n2 Where is Mary?\tkitchen\t1\n")
    (tmp_path / "en-10k").mkdir()
    (tmp_path / "en-10k" / "qa1_single-supporting-fact_train.txt").write_text("")  # subfolders are not searched
    (tmp_path / "qa4_a-folder_train.txt").mkdir()  # a folder with a file's name is not a file
    found = find_babi_files(tmp_path)
    assert list(found) == [1, 2, 8, 19]
    assert list(found[1]) == ["train", "valid", "test"]
    assert found[1]["test"] == tmp_path / "qa1_single-supporting-fact_test.txt"
    assert found[8] == {"train": tmp_path / "qa8_lists-sets_train.txt"}
    assert found[19] == {"test": tmp_path / "qa19_path-finding_test.txt"}
    assert read_babi_file(found[2]["train"])[0].answer == "kitchen"
    assert find_babi_files(str(tmp_path)) == found


def test_find_babi_files_duplicate(tmp_path: Path) -> None:
    (tmp_path / "qa1_single-supporting-fact_train.txt").write_text("")
    (tmp_path / "qa1_another-title_train.txt").write_text("")
    (tmp_path / "qa1_another-title_test.txt").write_text("")
    with pytest.raises(BabiFormatError) as err:
        find_babi_files(tmp_path)
    assert err.value.line == 0 and err.value.path == str(tmp_path)
    assert "found two" in err.value.message and "qa1_another-title_train.txt" in err.value.message
    assert "qa1_single-supporting-fact_train.txt" in err.value.message


def test_find_babi_files_none(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("")
    with pytest.raises(BabiFormatError, match="found none") as err:
        find_babi_files(tmp_path)
    assert str(err.value).startswith(f"{tmp_path}: ")
    with pytest.raises(BabiFormatError, match="no such folder"):
        find_babi_files(tmp_path / "missing")
    with pytest.raises(BabiFormatError, match="found a file"):
        find_babi_files(tmp_path / "readme.txt")


# -- the cache --------------------------------------------------------------------------------------


def test_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = babi_format.parse_babi

    def counting(text: str, path: str = "<string>") -> list[QA]:
        calls.append(path)
        return real(text, path)

    monkeypatch.setattr(babi_format, "parse_babi", counting)
    path = tmp_path / "qa1_single-supporting-fact_train.txt"
    path.write_text(SNIPPET)
    first = read_babi_file(path)
    assert first == SNIPPET_QAS and len(calls) == 1
    first.clear()  # the caller's own list: the cache is not touched
    assert read_babi_file(path) == SNIPPET_QAS and len(calls) == 1
    assert read_babi_file(str(tmp_path / "." / path.name)) == SNIPPET_QAS and len(calls) == 1  # same resolved path

    # changed content and size
    path.write_text(SNIPPET.replace("bathroom\t1", "bathroom\t1 2"))
    assert read_babi_file(path)[0].supporting == (0, 1) and len(calls) == 2
    # changed content, same size: a new modification time is noticed
    stat = path.stat()
    path.write_text(SNIPPET.replace("Mary moved", "Anna moved"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert read_babi_file(path)[0].story[0][0] == "anna" and len(calls) == 3
    assert read_babi_file(path)[0].story[0][0] == "anna" and len(calls) == 3

    # errors are not cached
    bad = tmp_path / "qa1_bad_train.txt"
    bad.write_text("2 Mary went to the garden.\n")
    for _ in range(2):
        with pytest.raises(BabiFormatError):
            read_babi_file(bad)
    assert len(calls) == 5
