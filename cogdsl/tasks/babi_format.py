"""Reading and writing the official bAbI text format (Weston et al. 2015, "Towards AI-complete
question answering", arXiv:1502.05698): the files ``qa1_single-supporting-fact_train.txt`` and
so on, turned into the :class:`~cogdsl.tasks.babi.QA` questions that :mod:`cogdsl.tasks.babi`
generates, and back::

    qas = read_babi_file("en/qa1_single-supporting-fact_train.txt")   # list[QA]
    files = find_babi_files("en")                # {1: {"train": Path, "test": Path}, ...}
    write_babi_file(generate_split(1, "1k", "train"), "qa1_generated_train.txt")

**The format.** One line per sentence, ``N text`` with ``N`` a positive line number. Numbering
restarts at 1 with every story and goes 1, 2, 3, ... within it, questions included::

    1 Mary moved to the bathroom.
    2 John went to the hallway.
    3 Where is Mary? \\tbathroom\\t1
    4 Daniel went back to the hallway.
    5 Where is Daniel? \\thallway\\t4
    1 Sandra travelled to the office.
    ...

A line whose text has a TAB or a ``?`` is a question line (bAbI statements have neither; a question
whose tabs became spaces is reported, not read as a statement). It has three TAB-separated fields:
the question, the answer and the supporting line numbers (space-separated, in any order). Supporting
numbers are line numbers of the same story and name earlier *statement* lines (never questions).
Answers of several words are joined by commas (``apple,football``, ``n,s``) and stay one token here.
Punctuation is attached to the words (``bathroom.``, ``Mary?``).

**Reading** (:func:`parse_babi`, :func:`read_babi_file`) gives one :class:`QA` per question line:

- ``story``: the statement lines of its story before the question, in order (earlier questions
  left out), each :func:`tokenize`-d -- lower-case words without punctuation;
- ``question``: the question field, tokenized (``("where", "is", "mary")``);
- ``answer``: the answer field, stripped and lower-cased, commas kept (``"apple,football"``);
- ``supporting``: the 0-based indices into ``story`` of the supporting lines, ascending (a line
  number that counts questions becomes an index that does not: in the example above, line 4 is
  ``story[2]``).

Tolerated: blank lines, CRLF (or lone CR) line ends, a UTF-8 byte-order mark, trailing spaces and
tabs, spaces around the fields, a missing or empty supporting field (``supporting == ()``) and a
supporting number listed twice. Everything else that does not fit raises :class:`BabiFormatError`
with the file's line number (1-based, blank lines counted) and a message saying what was expected
and what was found; a problem with the whole file (empty, no question at all, missing, a folder,
unreadable) has line 0. Statements after a story's last question would belong to no question and
are an error too.

**Writing** (:func:`format_babi`, :func:`write_babi_file`) rebuilds the stories: a question whose
story extends (has as a prefix) the previous question's story continues that story -- its new
statements are written, then the question line; any other question starts a new story at line 1.
Sentences are written as bAbI writes them: first word capitalised, words separated by one space,
``.`` after a statement, ``? `` after a question, then TAB, the answer, TAB and the supporting line
numbers (questions counted). Other words keep their case, so names stay lower-case (reading
lower-cases them anyway). ``parse_babi(format_babi(qas)) == qas`` for every list of questions that
:func:`format_babi` accepts.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from pathlib import Path

from cogdsl.errors import DataFileError
from cogdsl.tasks.babi import QA, Sentence

__all__ = [
    "BABI_FILE",
    "BabiFormatError",
    "find_babi_files",
    "format_babi",
    "parse_babi",
    "read_babi_file",
    "tokenize",
    "write_babi_file",
]

BABI_FILE = re.compile(
    r"qa(?P<task>[1-9][0-9]*)(?:_(?P<title>[a-z0-9]+(?:-[a-z0-9]+)*))?_(?P<split>train|valid|test)\.txt")
"""The official file names, ``qa<N>_<title>_<split>.txt`` (``qa1_single-supporting-fact_train.txt``), and
``qa<N>_<split>.txt`` without a title, as the release's ``en-valid`` and ``en-valid-10k`` folders name
theirs (``qa1_valid.txt``): groups ``task`` (the task number, no leading zero), ``title`` (lower-case words
joined by hyphens, or None) and ``split`` (``train``, ``valid`` or ``test``). Use
``BABI_FILE.fullmatch(name)``."""

_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
_LINE_NUMBER = re.compile(r"[0-9]+")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SEPARATOR = re.compile(r"[ \t]")
_SPLITS = ("train", "valid", "test")


class BabiFormatError(DataFileError, ValueError):
    """A bAbI file that cannot be read (or written), located in the file.

    Attributes:
        path: the file (or folder) as given, ``"<string>"`` for :func:`parse_babi`'s default.
        line: the 1-based line of the file, blank lines counted; 0 when the whole file is meant.
        message: what was expected and what was found.

    ``str(err)`` is ``"path:line: message"``, or ``"path: message"`` when ``line`` is 0.
    """

    def __init__(self, path: str, line: int, message: str) -> None:
        DataFileError.__init__(self, path, message, line)

    def __reduce__(self) -> tuple[type[BabiFormatError], tuple[str, int, str]]:
        return type(self), (self.path, self.line, self.message)


def tokenize(text: str) -> tuple[str, ...]:
    """The words of ``text``: lower-cased, each a run of letters and digits that may carry an inner
    apostrophe or hyphen (``mary's``, ``mother-in-law``); punctuation and whitespace are dropped.

    ``tokenize("Where is Mary? ") == ("where", "is", "mary")``.
    """
    return tuple(_WORD.findall(text.lower()))


def _shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _ranges(numbers: Sequence[int]) -> str:
    """Ascending numbers as ``1-2, 4, 6-9``."""
    parts: list[str] = []
    start = prev = None
    for n in [*numbers, None]:
        if start is not None and (n is None or n != prev + 1):
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if start is None:
            start = n
        prev = n
    return ", ".join(parts)


class _Story:
    """The story being read: its statements, and which story line number is which."""

    def __init__(self, first_line: int) -> None:
        self.first_line = first_line  # file line of the story's line 1
        self.last_line = first_line  # file line of its latest line
        self.number = 0  # its latest line number
        self.sentences: list[Sentence] = []
        self.index: dict[int, int] = {}  # statement line number -> index into sentences
        self.questions: set[int] = set()  # question line numbers
        self.statements_since_question = 0
        self.snapshot: tuple[Sentence, ...] = ()  # tuple(sentences), as of the latest question


def _fail(path: str, line: int, message: str) -> BabiFormatError:
    return BabiFormatError(path, line, message)


def _supporting(field: str, story: _Story, number: int, path: str, line: int) -> tuple[int, ...]:
    """The story indices of the supporting line numbers in ``field``."""
    indices: set[int] = set()
    for item in field.split():
        if not _LINE_NUMBER.fullmatch(item):
            raise _fail(path, line, f"expected supporting line numbers separated by spaces, found {_shown(item)}")
        n = int(item)
        if n in story.index:
            indices.add(story.index[n])
            continue
        known = sorted(story.index)
        has = f"it has statements {_ranges(known)}" if known else "it has no statements before this question"
        if n in story.questions:
            raise _fail(
                path, line, f"supporting fact {n} is a question line; supporting facts are earlier statements "
                f"of this story ({has})",
            )
        elif n == number:
            raise _fail(path, line, f"supporting fact {n} is this question's own line; supporting facts are "
                        f"earlier statements of this story ({has})")
        else:
            raise _fail(path, line, f"supporting fact {n} is not an earlier statement of this story ({has})")
    return tuple(sorted(indices))


def _answer(field: str, path: str, line: int) -> str:
    answer = field.strip().lower()
    if not answer:
        raise _fail(path, line, "expected an answer in the second tab-separated field, found an empty field")
    if any(c.isspace() for c in answer):
        raise _fail(path, line, f"expected a one-token answer (several answers are joined by commas, as in "
                    f"'apple,football'), found {_shown(answer)} with whitespace inside")
    if any(not part for part in answer.split(",")):
        raise _fail(path, line, f"expected answers joined by single commas (as in 'apple,football'), "
                    f"found an empty item in {_shown(answer)}")
    return answer


def parse_babi(text: str, path: str = "<string>", answers: bool = True) -> list[QA]:
    """The questions of a bAbI file's text, one :class:`QA` per question line, in file order.

    ``path`` only names the text in errors. See the module docstring for the format and what is
    tolerated. With ``answers=False`` (new questions to answer, ``cogdsl predict``) a question line may
    be the question alone (``3 Where is Mary?``); its answer is then ``""``.

    Raises:
        BabiFormatError: the text does not follow the format; ``line`` is the 1-based line of
            ``text`` (0: the text is empty or has no question line).
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    out: list[QA] = []
    story: _Story | None = None
    seen_line = False

    pending: BabiFormatError | None = None  # a story without questions, before the file's first question

    def close(current: _Story | None) -> None:
        nonlocal pending
        if current is None or not current.statements_since_question:
            return
        err = _fail(
            path, current.last_line,
            f"expected a question after statement {current.number}, found the end of the story (it starts at "
            f"line {current.first_line}); every statement of a bAbI story comes before one of its questions",
        )
        if out:
            raise err
        pending = pending or err

    for line, raw in enumerate(_LINE_BREAK.split(text), start=1):
        content = raw.strip()
        if not content:
            continue
        seen_line = True
        head, _, rest = _head(content)
        if not _LINE_NUMBER.fullmatch(head):
            raise _fail(path, line, f"expected a line number at the start of the line, found {_shown(head)}")
        number = int(head)
        if number == 0:
            raise _fail(path, line, "expected a positive line number, found 0; bAbI numbers the lines of a story "
                        "1, 2, 3, ...")
        if number == 1:
            close(story)
            story = _Story(line)
        elif story is None:
            raise _fail(path, line, f"the first line number is {number}; bAbI numbers the lines of a story "
                        "1, 2, 3, ... so a file starts at 1")
        elif number != story.number + 1:
            raise _fail(path, line, f"line number {number} follows {story.number}; bAbI numbers the lines of a "
                        "story 1, 2, 3, ... (a new story starts again at 1)")
        story.number = number
        story.last_line = line
        if not rest:
            raise _fail(path, line, f"expected a sentence after line number {number}, found nothing")
        if "\t" in rest or "?" in rest:  # a statement never has a question mark: tabs turned to spaces?
            fields = rest.split("\t")
            if len(fields) < 2 and not answers:
                fields = [rest, ""]
            if len(fields) < 2:
                raise _fail(path, line, "a question line needs 'question<TAB>answer<TAB>supporting line numbers', "
                            f"found {_shown(rest)} without a tab")
            if len(fields) > 3:
                raise _fail(path, line, "a question line needs 'question<TAB>answer<TAB>supporting line numbers', "
                            f"found {len(fields)} tab-separated fields: {_shown(rest)}")
            question = tokenize(fields[0])
            if not question:
                raise _fail(path, line, f"expected the question's words before the first tab, found "
                            f"{_shown(fields[0])}")
            answer = _answer(fields[1], path, line) if answers or fields[1].strip() else ""
            supporting = _supporting(fields[2] if len(fields) == 3 else "", story, number, path, line)
            if pending is not None:
                raise pending
            if len(story.snapshot) != len(story.sentences):
                story.snapshot = tuple(story.sentences)
            out.append(QA(story.snapshot, question, answer, supporting))
            story.questions.add(number)
            story.statements_since_question = 0
        else:
            words = tokenize(rest)
            if not words:
                raise _fail(path, line, f"expected a sentence with words after line number {number}, found "
                            f"{_shown(rest)}")
            story.index[number] = len(story.sentences)
            story.sentences.append(words)
            story.statements_since_question += 1
    if not seen_line:
        raise _fail(path, 0, "expected bAbI lines ('1 Mary moved to the bathroom.'), found an empty file")
    if not out:
        raise _fail(path, 0, "expected question lines ('N question<TAB>answer<TAB>supporting line numbers'), "
                    "found statements only")
    close(story)
    return out


def _head(content: str) -> tuple[str, str, str]:
    """``content`` (stripped, not empty) cut at its first space or tab: (head, separator, rest)."""
    m = _SEPARATOR.search(content)
    if m is None:
        return content, "", ""
    return content[: m.start()], m.group(), content[m.end() :]


# -- files ----------------------------------------------------------------------------------------


def _os_reason(err: OSError) -> str:
    """A plain reason for an OS error (``permission denied``), without the path or errno."""
    return (err.strerror or type(err).__name__).lower()


@functools.lru_cache(maxsize=64)
def _read_cached(resolved: str, mtime_ns: int, size: int) -> tuple[QA, ...]:
    """The questions of the file at ``resolved``; the cache key includes its modification time and
    size, so a changed file is read again. Errors name ``resolved`` (:func:`read_babi_file` renames)."""
    try:
        data = Path(resolved).read_bytes()
    except OSError as err:
        raise BabiFormatError(resolved, 0, f"cannot read the file: {_os_reason(err)}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        start = data.rfind(b"\n", 0, err.start) + 1
        line = data.count(b"\n", 0, err.start) + 1
        bad = data[err.start : err.end].hex(" ")
        raise BabiFormatError(resolved, line, f"expected UTF-8 text, found the byte(s) {bad} at byte "
                              f"{err.start - start + 1} of the line") from None
    return tuple(parse_babi(text, resolved))


def read_babi_file(path: str | Path) -> list[QA]:
    """The questions of one bAbI file (UTF-8), as :func:`parse_babi` reads them.

    Results are cached by (resolved path, modification time in ns, size): reading an unchanged file
    again does not parse it again, a changed one is read afresh. (A rewrite that keeps both the size
    and the modification time -- possible on file systems with coarse timestamps -- is not noticed;
    :func:`write_babi_file` clears the cache.) The list returned is the caller's own.

    Raises:
        BabiFormatError: the file does not follow the format (``line`` is its 1-based line), or it is
            missing, a folder, or unreadable (``line`` 0). ``path`` is as given.
    """
    shown = str(path)
    try:
        resolved = Path(path).resolve()
        st = resolved.stat()
    except FileNotFoundError:
        raise BabiFormatError(shown, 0, "expected a bAbI file, found no such file") from None
    except (OSError, RuntimeError, ValueError) as err:
        reason = _os_reason(err) if isinstance(err, OSError) else str(err) or type(err).__name__
        raise BabiFormatError(shown, 0, f"cannot read the file: {reason}") from None
    if resolved.is_dir():
        raise BabiFormatError(shown, 0, "expected a bAbI file, found a folder")
    if not resolved.is_file():
        raise BabiFormatError(shown, 0, "expected a bAbI file, found something that is not a regular file")
    try:
        return list(_read_cached(str(resolved), st.st_mtime_ns, st.st_size))
    except BabiFormatError as err:
        raise BabiFormatError(shown, err.line, err.message) from None


# -- writing --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _is_word(word: str) -> bool:
    """Whether ``word`` reads back as itself: one lower-case :func:`tokenize` word."""
    return tokenize(word) == (word,)


def _check_words(words: Sentence, what: str, where: str) -> None:
    if not words:
        raise ValueError(f"{where}: {what} has no words; bAbI cannot write an empty line")
    for word in words:
        if not isinstance(word, str) or not _is_word(word):
            raise ValueError(f"{where}: {what} has the word {word!r}; expected lower-case letters and digits "
                             "(with inner ' or -), which is all a bAbI file reads back as one word")


def _check_qa(qa: QA, k: int, new_from: int) -> None:
    """Raise ValueError if ``qa`` (the ``k``-th, 0-based) would not read back as itself; story
    sentences before ``new_from`` were checked already."""
    where = f"format_babi: question {k}"
    for i in range(new_from, len(qa.story)):
        _check_words(qa.story[i], f"story sentence {i}", where)
    _check_words(qa.question, "the question", where)
    answer = qa.answer
    if (
        not isinstance(answer, str) or not answer or answer != answer.strip().lower()
        or any(c.isspace() for c in answer) or any(not part for part in answer.split(","))
    ):
        raise ValueError(f"{where}: expected a lower-case answer without whitespace (several answers joined by "
                         f"commas, as in 'apple,football'), found {answer!r}")
    sup = qa.supporting
    if (
        any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < len(qa.story) for s in sup)
        or list(sup) != sorted(set(sup))
    ):
        raise ValueError(f"{where}: expected supporting indices ascending, distinct and in 0..{len(qa.story) - 1} "
                         f"(the story has {len(qa.story)} sentences), found {tuple(sup)!r}")


def _sentence(words: Sentence, end: str) -> str:
    first = words[0][:1].upper() + words[0][1:]
    return " ".join((first, *words[1:])) + end


def format_babi(qas: Sequence[QA]) -> str:
    """``qas`` as the text of a bAbI file (``"\\n"`` line ends, a final newline; ``""`` for no questions).

    A question whose story has the previous question's story as a prefix continues that story: its new
    statements are written, then the question line. Any other question starts a new story, numbered
    from 1. Statements are written ``N First word ... last.``, questions
    ``N First word ... last? <TAB>answer<TAB>supporting line numbers`` (line numbers within the story,
    questions counted, ascending and space-separated; an empty field when there are none).

    Raises:
        ValueError: a question that would not read back as itself: a word that is not one lower-case
            :func:`tokenize` word, an empty sentence or question, an answer with upper case, whitespace
            or empty comma items, supporting indices not ascending, repeated or outside the story.
    """
    lines: list[str] = []
    prev: tuple[Sentence, ...] | None = None
    number = 0
    numbers: list[int] = []  # story line number of each statement of the current story
    for k, qa in enumerate(qas):
        story = qa.story
        continues = prev is not None and len(story) >= len(prev) and story[: len(prev)] == prev
        if not continues:
            number = 0
            numbers = []
        _check_qa(qa, k, len(numbers))
        for sentence in story[len(numbers) :]:
            number += 1
            numbers.append(number)
            lines.append(f"{number} {_sentence(sentence, '.')}")
        number += 1
        support = " ".join(str(numbers[i]) for i in qa.supporting)
        lines.append(f"{number} {_sentence(qa.question, '?')} \t{qa.answer}\t{support}")
        prev = story
    return "".join(line + "\n" for line in lines)


def write_babi_file(qas: Sequence[QA], path: str | Path) -> None:
    """Write ``qas`` to ``path`` in the bAbI format (:func:`format_babi`), UTF-8 with ``\\n`` line ends,
    replacing any file there. :func:`read_babi_file` reads it back as ``list(qas)``.

    Raises:
        ValueError: no questions (the file could not be read back), or questions :func:`format_babi` rejects.
        BabiFormatError: the file cannot be written (``line`` 0): its folder is missing, it is a
            folder, permission denied, ...
    """
    if len(qas) == 0:
        raise ValueError("write_babi_file: no questions to write; a bAbI file needs at least one question")
    text = format_babi(qas)
    target = Path(path)
    if target.is_dir():
        raise BabiFormatError(str(path), 0, "cannot write a bAbI file: the path is a folder")
    try:
        target.write_text(text, encoding="utf-8", newline="\n")
    except FileNotFoundError:
        raise BabiFormatError(str(path), 0, "cannot write a bAbI file: its folder does not exist") from None
    except OSError as err:
        raise BabiFormatError(str(path), 0, f"cannot write a bAbI file: {_os_reason(err)}") from None
    finally:
        _read_cached.cache_clear()


# -- folders --------------------------------------------------------------------------------------


def find_babi_files(folder: str | Path) -> dict[int, dict[str, Path]]:
    """The official bAbI files directly in ``folder`` (not in its subfolders: a release keeps ``en``,
    ``en-10k``, ... apart), by name (:data:`BABI_FILE`): task number -> split -> path, tasks ascending,
    splits in the order train, valid, test::

        {1: {"train": Path("en/qa1_single-supporting-fact_train.txt"), "test": Path(...)}, 2: ...}

    Raises:
        BabiFormatError (``line`` 0, ``path`` the folder): the folder is missing, not a folder or
            unreadable; it holds no bAbI file; or two files are for the same task and split
            (``qa1_a_train.txt`` and ``qa1_b_train.txt``).
    """
    shown = str(folder)
    root = Path(folder)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        raise BabiFormatError(shown, 0, "expected a folder of bAbI files, found no such folder") from None
    except NotADirectoryError:
        raise BabiFormatError(shown, 0, "expected a folder of bAbI files, found a file") from None
    except OSError as err:
        raise BabiFormatError(shown, 0, f"cannot list the folder: {_os_reason(err)}") from None
    found: dict[int, dict[str, Path]] = {}
    for entry in entries:
        m = BABI_FILE.fullmatch(entry.name)
        if m is None or not entry.is_file():
            continue
        task, split = int(m["task"]), m["split"]
        splits = found.setdefault(task, {})
        if split in splits:
            raise BabiFormatError(shown, 0, f"expected one {split} file for task {task}, found two: "
                                  f"{splits[split].name} and {entry.name}")
        splits[split] = root / entry.name
    if not found:
        raise BabiFormatError(shown, 0, "expected bAbI files named qa<N>_<title>_<split>.txt or qa<N>_<split>.txt "
                              "(split train, valid or test), found none")
    return {t: {s: found[t][s] for s in _SPLITS if s in found[t]} for t in sorted(found)}
