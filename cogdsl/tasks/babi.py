"""A generator of bAbI-style question answering data, after Weston et al. 2015, "Towards
AI-complete question answering: a set of prerequisite toy tasks" (arXiv:1502.05698).

The real bAbI files are not used (they cannot be downloaded here, and none of their text or
code is copied): a small simulated world -- people who move between places and carry
objects, animals with species, fears and colours -- writes stories, questions, answers and
supporting-fact indices in the style of six of the paper's twenty tasks (:data:`BABI_TASKS`)::

    qas = generate(task=2, count=1000, seed=0)          # list[QA], deterministic in seed
    train = generate_split(2, "1k", "train")            # 1000 questions, seed 1002
    test = generate_split(2, "1k", "test")              # 1000 questions, seed 3002
    batch = encode(train[:32], vocabulary(), max_sentences=50, max_words=MAX_WORDS)

**Text.** Every token is a lower-case word; names are lower-cased too (``mary``).
Punctuation is dropped: a sentence carries no ``.`` token and a question no ``?`` (the
sentence structure of :class:`QA` already marks where each one ends). Answers are single
words. Example (task 2), as :meth:`QA.text` writes it::

    1 john moved to the bathroom
    2 john got the football there
    3 mary went to the kitchen
    4 john went to the hallway
    5 sandra journeyed to the kitchen
    where is the football ? hallway    supporting: 2 4

**Stories and questions.** In tasks 1, 2, 3 and 6 a story is a run of world events with up
to five questions interleaved, as in bAbI: each question is asked after some events and is
answered from the events so far. In tasks 15 and 16 all facts come first and the questions
follow. A :class:`QA` holds one question; its ``story`` is the story *up to that question*
-- only the statements, without the earlier questions (bAbI numbers its lines with the
questions included; here ``supporting`` indexes ``story``, 0-based). Questions of the same
story therefore share a prefix of sentences. Every answer is determined by ``story`` alone,
and by the ``supporting`` sentences alone (replayed in order); the other sentences are
distractors.

**The worlds, task by task** (word lists: :data:`PEOPLE`, :data:`PLACES`, :data:`OBJECTS`,
:data:`MOVE_VERBS`, :data:`PICK_VERBS`, :data:`DROP_VERBS`, :data:`FEARFUL`,
:data:`DEDUCTION_NAMES`, :data:`INDUCTION_SPECIES`, :data:`COLORS`, :data:`INDUCTION_NAMES`):

- *People, places, objects* (tasks 1, 2, 3, 6). Four people, six places, three objects.
  Events: a person moves to a place other than the one they are in (``mary went to the
  kitchen``; ``went back to`` only to a place that person has been in before); a person
  whose place is known picks up an object that nobody holds and that is either in that
  place or has never been placed (``john grabbed the apple``, optionally ``... there``); a
  holder drops an object, which stays where the holder is (``john put down the apple``).
  A held object is wherever its holder is. Nothing is known of a person before their first
  move, nor of an object before its first pick-up.
- **1 single supporting fact**: moves only; two moves per question; ``where is mary`` about
  a person whose place is known (any of them, not just the last mover); the answer is the
  place, supported by that person's last move.
- **2 two supporting facts**: moves, pick-ups, drops; one to five events per question;
  ``where is the football`` about an object whose place is known. Supported by the pick-up
  by its holder and the holder's last move, or, for an object on the floor, by the drop and
  the dropper's last move before it.
- **3 three supporting facts**: as 2, with more pick-ups and holders moving more often, two
  to six events per question; ``where was the football before the kitchen``. An object's
  *trail* is the list of places it has been in, in order (a new entry each time its holder
  carries it into a different place; the first entry is the place of its first pick-up).
  As in bAbI, the question is about the object's latest arrival: it names the last trail
  entry (the place the object is in now), asked only when that place occurs once in the
  trail; the answer is the entry before it. Supported by the holder's pick-up, the holder's
  move into the earlier place and the move into the named place.
- **6 yes/no questions**: the task-1 world, with a few pick-ups and drops as distractors;
  two events per question; ``is mary in the kitchen`` about a person whose place is known,
  half the time about that place (``yes``), otherwise about a random other place (``no``).
  Supported by that person's last move -- for ``no`` too, since that move places the
  person elsewhere; no question is asked about a person whose place is unknown (bAbI's
  ``maybe`` belongs to task 10), so there is no exception to "the supporting sentences
  suffice".
- **15 basic deduction**: four species, each afraid of one other species (``wolves are
  afraid of cats``, plurals in the rule, a random other species each), and four named
  animals of random species (``gertrude is a mouse``); eight facts in random order, then
  one question about each name in random order, ``what is gertrude afraid of``, answered
  with a singular species (``cat``). Supported by the name's species fact and the species'
  fear rule.
- **16 basic induction**: four species, each with one colour in the story (drawn at
  random, two species may share one), five named animals of random species; every name
  but one has its colour stated (``lily is white``); the species of the nameless-colour
  animal is shared by at least one animal of stated colour. Nine facts in random order,
  then ``what color is bernhard``, answered with the species' colour. Supported by the
  name's species fact, and the species fact and colour fact of the last-stated other
  member of that species.

**Randomness and splits.** :func:`generate` draws everything from ``random.Random(seed)``
(never the global RNG): the same seed gives identical data, and ``generate(t, n, s)`` is a
prefix of ``generate(t, m, s)`` for ``n <= m`` (stories are made one after another; the
last one is cut where ``count`` is reached). :func:`generate_split` fixes the seeds:
``split_seed(task, split) = 1000 * SPLIT_SEEDS[split] + task``, so train is
``1001 .. 1016``, valid ``2001 .. 2016`` and test ``3001 .. 3016``; no two splits or tasks
share a seed. Sizes: train :data:`SIZES` (``"1k"``: 1000, ``"10k"``: 10000 questions, the 1k
train set being the first 1000 questions of the 10k one), valid a tenth of that, test
always :data:`TEST_SIZE` = 1000 questions, the same for both sizes.

**Vocabulary.** :func:`vocabulary` is built from the word lists and templates above, not
from sampled data, so it is one fixed vocabulary for all six tasks (joint training), with
id 0 reserved for padding. :func:`encode` turns questions into padded tensors.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

Sentence = tuple[str, ...]
Split = Literal["train", "valid", "test"]

BABI_TASKS: dict[int, str] = {
    1: "single_supporting_fact",
    2: "two_supporting_facts",
    3: "three_supporting_facts",
    6: "yes_no_questions",
    15: "basic_deduction",
    16: "basic_induction",
}
"""The generated bAbI tasks: the paper's task number -> a short name."""

SIZES: dict[str, int] = {"1k": 1000, "10k": 10000}
"""Training set sizes, in questions, as in bAbI's ``en`` (1k) and ``en-10k`` releases."""

TEST_SIZE = 1000
"""Questions in every task's test split (whatever the training size)."""

SPLIT_SEEDS: dict[str, int] = {"train": 1, "valid": 2, "test": 3}
"""The seed stream of each split: :func:`split_seed` is ``1000 * SPLIT_SEEDS[split] + task``."""

PAD = "<pad>"
"""The padding token, id 0 in :func:`vocabulary`."""

MAX_WORDS = 7
"""The longest sentence or question any task writes, in words
(``where was the football before the bathroom``): a safe ``max_words`` for :func:`encode`."""

# -- word lists ---------------------------------------------------------------------------------

PEOPLE: tuple[str, ...] = ("mary", "john", "daniel", "sandra")
PLACES: tuple[str, ...] = ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office")
OBJECTS: tuple[str, ...] = ("apple", "football", "milk")
MOVE_VERBS: tuple[Sentence, ...] = (("moved", "to"), ("went", "to"), ("journeyed", "to"), ("travelled", "to"))
RETURN_VERB: Sentence = ("went", "back", "to")
"""Used instead of a :data:`MOVE_VERBS` entry, some of the time, for a place visited before."""
PICK_VERBS: tuple[Sentence, ...] = (("picked", "up"), ("got",), ("grabbed",), ("took",))
DROP_VERBS: tuple[Sentence, ...] = (("dropped",), ("discarded",), ("put", "down"), ("left",))

FEARFUL: dict[str, str] = {"mouse": "mice", "sheep": "sheep", "wolf": "wolves", "cat": "cats"}
"""Task 15's species: singular (used in ``x is a mouse`` and as answers) -> plural (rules)."""
DEDUCTION_NAMES: tuple[str, ...] = ("gertrude", "winona", "emily", "jessica")

INDUCTION_SPECIES: tuple[str, ...] = ("swan", "lion", "frog", "rhino")
COLORS: tuple[str, ...] = ("white", "gray", "yellow", "green")
INDUCTION_NAMES: tuple[str, ...] = ("lily", "bernhard", "greg", "brian", "julius")

_FUNCTION_WORDS: tuple[str, ...] = (
    "the", "there", "where", "is", "was", "before", "in", "yes", "no",
    "a", "are", "afraid", "of", "what", "color",
)  # fmt: skip


# -- data ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QA:
    """One question with the story it is asked about.

    Attributes:
        story: the sentences before the question (statements only, earlier questions left
            out), each a tuple of lower-case words without punctuation.
        question: the question's words, without the question mark.
        answer: the one-word answer.
        supporting: 0-based indices into ``story`` of the supporting facts, ascending.
    """

    story: tuple[Sentence, ...]
    question: Sentence
    answer: str
    supporting: tuple[int, ...]

    def text(self) -> str:
        """The question in a bAbI-like text form: numbered sentences (1-based), then
        ``question ? answer    supporting: i j`` (1-based) on the last line."""
        lines = [f"{i + 1} {' '.join(s)}" for i, s in enumerate(self.story)]
        support = " ".join(str(i + 1) for i in self.supporting)
        lines.append(f"{' '.join(self.question)} ? {self.answer}    supporting: {support}")
        return "\n".join(lines)


def _check_task(task: int) -> None:
    if isinstance(task, bool) or not isinstance(task, int) or task not in BABI_TASKS:
        known = ", ".join(f"{t} ({n})" for t, n in BABI_TASKS.items())
        raise ValueError(f"unknown bAbI task {task!r}; generated tasks: {known}")


# -- the people / places / objects world (tasks 1, 2, 3, 6) ------------------------------------


@dataclass(frozen=True)
class _Mix:
    """How one task's world runs: event weights, events between questions, questions per story."""

    move: float
    pick: float
    drop: float
    gap: tuple[int, int]  # events before each question, inclusive range
    questions: int = 5
    carry_bias: float = 0.0  # chance that a move is made by a person holding something
    max_events: int = 120  # a story that cannot ask its questions by then just ends


_MIXES: dict[int, _Mix] = {
    1: _Mix(move=1.0, pick=0.0, drop=0.0, gap=(2, 2)),
    2: _Mix(move=0.5, pick=0.3, drop=0.2, gap=(1, 5)),
    3: _Mix(move=0.5, pick=0.35, drop=0.15, gap=(2, 6), carry_bias=0.6),
    6: _Mix(move=0.8, pick=0.12, drop=0.08, gap=(2, 2)),
}


@dataclass
class _World:
    """The state of the people/places/objects world, with the sentence index of every fact
    a question may need as support."""

    rng: random.Random
    sentences: list[Sentence] = field(default_factory=list)
    loc: dict[str, str] = field(default_factory=dict)  # person -> place (known ones only)
    last_move: dict[str, int] = field(default_factory=dict)  # person -> sentence of last move
    visited: dict[str, set[str]] = field(default_factory=dict)
    holder: dict[str, str] = field(default_factory=dict)  # object -> person holding it
    pick: dict[str, int] = field(default_factory=dict)  # object -> its holder's pick-up sentence
    floor: dict[str, tuple[str, tuple[int, int]]] = field(default_factory=dict)
    # object on the floor at a known place -> (place, (dropper's last move, drop))
    trail: dict[str, list[tuple[str, tuple[int, ...]]]] = field(default_factory=dict)
    # object -> [(place, supporting facts of the arrival there from the previous entry)]

    def say(self, words: Sentence) -> int:
        self.sentences.append(words)
        return len(self.sentences) - 1

    def move(self, person: str, place: str) -> None:
        seen = self.visited.setdefault(person, set())
        verb = RETURN_VERB if place in seen and self.rng.random() < 0.5 else self.rng.choice(MOVE_VERBS)
        k = self.say((person, *verb, "the", place))
        before = self.last_move.get(person)
        for obj, who in self.holder.items():
            if who == person:
                assert before is not None  # only people of known place pick things up
                self.trail[obj].append((place, tuple(sorted((self.pick[obj], before, k)))))
        self.loc[person] = place
        self.last_move[person] = k
        seen.add(place)

    def pick_up(self, person: str, obj: str) -> None:
        there = ("there",) if self.rng.random() < 0.5 else ()
        k = self.say((person, *self.rng.choice(PICK_VERBS), "the", obj, *there))
        self.holder[obj] = person
        self.pick[obj] = k
        self.floor.pop(obj, None)
        trail = self.trail.setdefault(obj, [])
        if not trail:
            trail.append((self.loc[person], ()))

    def drop(self, obj: str) -> None:
        person = self.holder.pop(obj)
        there = ("there",) if self.rng.random() < 0.5 else ()
        k = self.say((person, *self.rng.choice(DROP_VERBS), "the", obj, *there))
        self.floor[obj] = (self.loc[person], (self.last_move[person], k))
        del self.pick[obj]

    def where(self, obj: str) -> tuple[str, tuple[int, ...]] | None:
        """The object's place and its two supporting facts, or None if unknown."""
        if obj in self.holder:
            person = self.holder[obj]
            return self.loc[person], tuple(sorted((self.pick[obj], self.last_move[person])))
        return self.floor.get(obj)

    def step(self, mix: _Mix) -> None:
        """One random event."""
        rng = self.rng
        picks = [
            (p, o)
            for p in PEOPLE
            if p in self.loc
            for o in OBJECTS
            if o not in self.holder and (o not in self.floor or self.floor[o][0] == self.loc[p])
        ]
        drops = sorted(self.holder)
        weights = (mix.move, mix.pick if picks else 0.0, mix.drop if drops else 0.0)
        kind = rng.choices(("move", "pick", "drop"), weights)[0]
        if kind == "pick":
            self.pick_up(*rng.choice(picks))
        elif kind == "drop":
            self.drop(rng.choice(drops))
        else:
            carriers = sorted(set(self.holder.values()))
            person = rng.choice(carriers if carriers and rng.random() < mix.carry_bias else PEOPLE)
            here = self.loc.get(person)
            self.move(person, rng.choice([p for p in PLACES if p != here]))


def _ask(task: int, world: _World) -> QA | None:
    """A random question of ``task`` about the world now, or None if none can be asked."""
    rng = world.rng
    story = tuple(world.sentences)
    if task in (1, 6):
        known = [p for p in PEOPLE if p in world.loc]
        if not known:
            return None
        person = rng.choice(known)
        place, support = world.loc[person], (world.last_move[person],)
        if task == 1:
            return QA(story, ("where", "is", person), place, support)
        if rng.random() < 0.5:
            return QA(story, ("is", person, "in", "the", place), "yes", support)
        other = rng.choice([p for p in PLACES if p != place])
        return QA(story, ("is", person, "in", "the", other), "no", support)
    if task == 2:
        known_objs = [o for o in OBJECTS if world.where(o) is not None]
        if not known_objs:
            return None
        obj = rng.choice(known_objs)
        place, support = world.where(obj)  # type: ignore[misc]
        return QA(story, ("where", "is", "the", obj), place, support)
    # task 3, as bAbI asks it: about an object's latest arrival, from the place it is in now.
    # Only where that place occurs once in its trail, so the question names one arrival.
    options = []
    for obj in OBJECTS:
        places = [p for p, _ in world.trail.get(obj, [])]
        if len(places) > 1 and places.count(places[-1]) == 1:
            options.append(obj)
    if not options:
        return None
    obj = rng.choice(options)
    (before, _), (now, support) = world.trail[obj][-2:]
    return QA(story, ("where", "was", "the", obj, "before", "the", now), before, support)


def _world_story(task: int, rng: random.Random, out: list[QA], count: int) -> None:
    mix = _MIXES[task]
    world = _World(rng)
    asked = 0
    gap = rng.randint(*mix.gap)
    since = 0
    while asked < mix.questions and len(out) < count and len(world.sentences) < mix.max_events:
        world.step(mix)
        since += 1
        if since >= gap:
            qa = _ask(task, world)
            if qa is not None:
                out.append(qa)
                asked += 1
                since = 0
                gap = rng.randint(*mix.gap)


# -- deduction (15) and induction (16) ---------------------------------------------------------


def _deduction_story(rng: random.Random, out: list[QA], count: int) -> None:
    species = list(FEARFUL)
    facts: list[tuple[Sentence, str]] = []  # (sentence, key) with key "rule:<species>" / "is:<name>"
    fears = {s: rng.choice([t for t in species if t != s]) for s in species}
    for s, t in fears.items():
        facts.append(((FEARFUL[s], "are", "afraid", "of", FEARFUL[t]), f"rule:{s}"))
    kinds = {n: rng.choice(species) for n in DEDUCTION_NAMES}
    for n, s in kinds.items():
        facts.append(((n, "is", "a", s), f"is:{n}"))
    rng.shuffle(facts)
    story = tuple(s for s, _ in facts)
    index = {key: i for i, (_, key) in enumerate(facts)}
    for name in rng.sample(DEDUCTION_NAMES, len(DEDUCTION_NAMES)):
        if len(out) >= count:
            return
        kind = kinds[name]
        support = tuple(sorted((index[f"is:{name}"], index[f"rule:{kind}"])))
        out.append(QA(story, ("what", "is", name, "afraid", "of"), fears[kind], support))


def _induction_story(rng: random.Random, out: list[QA], count: int) -> None:
    colour = {s: rng.choice(COLORS) for s in INDUCTION_SPECIES}
    while True:
        kinds = {n: rng.choice(INDUCTION_SPECIES) for n in INDUCTION_NAMES}
        askable = [n for n in INDUCTION_NAMES if any(kinds[m] == kinds[n] for m in INDUCTION_NAMES if m != n)]
        if askable:
            break
    name = rng.choice(askable)
    facts: list[tuple[Sentence, str]] = [((n, "is", "a", s), f"is:{n}") for n, s in kinds.items()]
    facts += [((n, "is", colour[kinds[n]]), f"color:{n}") for n in INDUCTION_NAMES if n != name]
    rng.shuffle(facts)
    story = tuple(s for s, _ in facts)
    index = {key: i for i, (_, key) in enumerate(facts)}
    peers = [m for m in INDUCTION_NAMES if m != name and kinds[m] == kinds[name]]
    witness = max(peers, key=lambda m: max(index[f"is:{m}"], index[f"color:{m}"]))
    support = tuple(sorted((index[f"is:{name}"], index[f"is:{witness}"], index[f"color:{witness}"])))
    out.append(QA(story, ("what", "color", "is", name), colour[kinds[name]], support))


_STORIES: dict[int, Callable[[random.Random, list[QA], int], None]] = {
    1: functools.partial(_world_story, 1),
    2: functools.partial(_world_story, 2),
    3: functools.partial(_world_story, 3),
    6: functools.partial(_world_story, 6),
    15: _deduction_story,
    16: _induction_story,
}


def generate(task: int, count: int, seed: int) -> list[QA]:
    """``count`` questions of bAbI task ``task`` (a key of :data:`BABI_TASKS`).

    Deterministic in ``seed`` (a ``random.Random(seed)`` drives everything); the result for
    a smaller ``count`` is a prefix of that for a larger one. Several consecutive questions
    come from one story (see the module docstring).

    Raises:
        ValueError: unknown task, or a negative ``count``.
    """
    _check_task(task)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a non-negative int, got {count!r}")
    rng = random.Random(seed)
    out: list[QA] = []
    story = _STORIES[task]
    while len(out) < count:
        story(rng, out, count)
    return out


def split_seed(task: int, split: Split) -> int:
    """The seed of one task's split: ``1000 * SPLIT_SEEDS[split] + task`` (train 1001..,
    valid 2001.., test 3001..); distinct for every (task, split)."""
    _check_task(task)
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_SEEDS)}")
    return 1000 * SPLIT_SEEDS[split] + task


def generate_split(task: int, size: str, split: Split) -> list[QA]:
    """A fixed split of one task: ``"train"`` has ``SIZES[size]`` questions, ``"valid"`` a
    tenth of that, ``"test"`` always :data:`TEST_SIZE` (the same test set for both sizes).

    Raises:
        ValueError: unknown task, size or split.
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
    seed = split_seed(task, split)
    count = {"train": SIZES[size], "valid": SIZES[size] // 10, "test": TEST_SIZE}[split]
    return generate(task, count, seed)


# -- vocabulary and tensors ---------------------------------------------------------------------


class Vocabulary:
    """A fixed word <-> id mapping; id 0 is :data:`PAD`, words have ids ``1 .. len - 1``.

    Attributes:
        words: all tokens by id, ``words[0] == PAD``.
    """

    def __init__(self, words: Iterable[str]) -> None:
        listed = list(words)
        if PAD in listed or len(set(listed)) != len(listed):
            raise ValueError("vocabulary words must be distinct and must not include the padding token")
        self.words: tuple[str, ...] = (PAD, *listed)
        self._ids = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        """The number of ids, padding included (an embedding table's row count)."""
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._ids and word != PAD

    def __repr__(self) -> str:
        return f"Vocabulary({len(self.words) - 1} words + {PAD})"

    def id(self, word: str) -> int:
        """The id of ``word``.

        Raises:
            ValueError: ``word`` is not in the vocabulary (the padding token included).
        """
        i = self._ids.get(word, 0)
        if i == 0:
            raise ValueError(f"word {word!r} is not in the bAbI vocabulary ({len(self.words) - 1} words)")
        return i

    def ids(self, words: Sequence[str]) -> list[int]:
        """The ids of ``words`` (see :meth:`id`)."""
        return [self.id(w) for w in words]

    def word(self, i: int) -> str:
        """The token with id ``i`` (:data:`PAD` for 0)."""
        return self.words[i]


def _all_words() -> list[str]:
    words: set[str] = set(_FUNCTION_WORDS)
    for group in (PEOPLE, PLACES, OBJECTS, DEDUCTION_NAMES, INDUCTION_SPECIES, COLORS, INDUCTION_NAMES, RETURN_VERB):
        words.update(group)
    for phrase in (*MOVE_VERBS, *PICK_VERBS, *DROP_VERBS):
        words.update(phrase)
    words.update(FEARFUL)
    words.update(FEARFUL.values())
    return sorted(words)


@functools.cache
def vocabulary() -> Vocabulary:
    """The one vocabulary of all six tasks (the same object on every call), built from the
    word lists -- so it never depends on a seed. Words are sorted; ids start at 1."""
    return Vocabulary(_all_words())


#: The word classes a relabelling permutes (:func:`relabellings`): each a tuple of interchangeable
#: *units*, and a unit's forms move together (task 15's singular and plural species, ``wolf`` with
#: ``wolves``). ``sheep`` is its own plural, so no word-level map could send it to two forms of
#: another species: it is the one name that is never relabelled.
RELABEL_CLASSES: tuple[tuple[Sentence, ...], ...] = (
    tuple((w,) for w in PEOPLE),
    tuple((w,) for w in PLACES),
    tuple((w,) for w in OBJECTS),
    tuple((w,) for w in DEDUCTION_NAMES),
    tuple((one, many) for one, many in FEARFUL.items() if one != many),
    tuple((w,) for w in INDUCTION_SPECIES),
    tuple((w,) for w in COLORS),
    tuple((w,) for w in INDUCTION_NAMES),
)


@functools.cache
def _relabel_ids() -> tuple[torch.Tensor, ...]:
    """Each class of :data:`RELABEL_CLASSES` as a (units, forms) tensor of word ids."""
    vocab = vocabulary()
    return tuple(torch.tensor([vocab.ids(unit) for unit in units]) for units in RELABEL_CLASSES)


def relabellings(count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random relabellings of the vocabulary, as (count, V) long maps from word id to word id.

    Row r maps each class of :data:`RELABEL_CLASSES` onto itself by a uniform random permutation
    of its units (drawn from ``generator``) and every other id, padding included, to itself. A
    bAbI-style task's answer is the same function of the story whatever the people, places,
    objects and animals are called, so a relabelled question is another valid question: this
    is data augmentation that keeps the task, and a model cannot memorise which names go together.
    """
    table = torch.arange(len(vocabulary())).repeat(count, 1)
    for units in _relabel_ids():  # (U, F)
        order = torch.rand(count, units.shape[0], generator=generator, device=generator.device).argsort(1).cpu()
        table[:, units.flatten()] = units[order].flatten(1)  # (count, U, F) -> the forms in units.flatten()'s order
    return table


def relabel(data: dict[str, torch.Tensor], table: torch.Tensor) -> dict[str, torch.Tensor]:
    """Encoded questions (:func:`encode`, B of them) with their words mapped by ``table`` (B, V): the story,
    the question and the answer of question b by row b. The other entries are kept."""
    count = table.shape[0]
    if count != data["answer"].shape[0]:
        raise ValueError(f"relabel: {count} relabellings for {data['answer'].shape[0]} questions; one per question")

    def mapped(ids: torch.Tensor) -> torch.Tensor:
        return table.gather(1, ids.reshape(count, -1)).view(ids.shape)

    return {**data, "story": mapped(data["story"]), "question": mapped(data["question"]),
            "answer": mapped(data["answer"])}


def lengths(qas: Sequence[QA]) -> tuple[int, int]:
    """``(max sentences in a story, max words in a sentence or question)`` over ``qas``."""
    sentences = max((len(q.story) for q in qas), default=0)
    words = max((len(s) for q in qas for s in (*q.story, q.question)), default=0)
    return sentences, words


def encode(qas: Sequence[QA], vocab: Vocabulary, max_sentences: int, max_words: int) -> dict[str, torch.Tensor]:
    """Questions as padded tensors (CPU). ``B = len(qas)``, ``S = max_sentences``,
    ``L = max_words``:

    - ``story``: (B, S, L) long word ids. A story longer than ``S`` sentences keeps its
      *last* ``S``. Sentences fill rows ``0 .. n-1`` in story order (``n`` the kept count),
      words fill columns from 0; every other entry is 0 (padding).
    - ``question``: (B, L) long, the question's word ids, padded with 0.
    - ``answer``: (B,) long, the answer's word id (in ``vocab``).
    - ``supporting``: (B, S) bool, True at the rows of supporting facts after truncation
      (a supporting fact cut off with the story's start is simply absent).
    - ``sentences``: (B,) long, ``n``: the number of real (kept) sentences.

    Raises:
        ValueError: a word not in ``vocab``; a sentence or question longer than ``L``
            (words are never cut: that could change the meaning); ``S`` or ``L`` below 1.
    """
    if max_sentences < 1 or max_words < 1:
        raise ValueError(f"max_sentences and max_words must be >= 1, got {max_sentences}, {max_words}")
    cache: dict[Sentence, list[int]] = {}

    def row(words: Sentence) -> list[int]:
        ids = cache.get(words)
        if ids is None:
            if len(words) > max_words:
                raise ValueError(f"{' '.join(words)!r} has {len(words)} words, more than max_words={max_words}")
            ids = cache[words] = vocab.ids(words) + [0] * (max_words - len(words))
        return ids

    blank = [0] * max_words
    story: list[list[list[int]]] = []
    supporting: list[list[bool]] = []
    for qa in qas:
        start = max(0, len(qa.story) - max_sentences)
        kept = [row(s) for s in qa.story[start:]]
        story.append(kept + [blank] * (max_sentences - len(kept)))
        mask = [False] * max_sentences
        for s in qa.supporting:
            if s >= start:
                mask[s - start] = True
        supporting.append(mask)
    return {
        "story": torch.tensor(story, dtype=torch.long).view(len(qas), max_sentences, max_words),
        "question": torch.tensor([row(qa.question) for qa in qas], dtype=torch.long).view(len(qas), max_words),
        "answer": torch.tensor([vocab.id(qa.answer) for qa in qas], dtype=torch.long),
        "supporting": torch.tensor(supporting, dtype=torch.bool).view(len(qas), max_sentences),
        "sentences": torch.tensor([min(len(qa.story), max_sentences) for qa in qas], dtype=torch.long),
    }
