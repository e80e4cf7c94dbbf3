"""A length curriculum: training starts on short sequences and the longest length drawn rises.

Joulin & Mikolov (2015) train their stack RNN on strings with n drawn up to N and raise N by one
every epoch; Zaremba & Sutskever (2014) found such schedules needed for long programs. In the
``train:`` section::

    train:
      task: {name: anbn, min_n: 1, max_n: 19}
      curriculum_every: 100     # raise the longest n by one every 100 steps ...
      curriculum_start: 3       # ... from 3, up to max_n (reached at step 1,600)

At step t the task draws its length from [lo, L_t], lo its shortest length and

    L_t = min(hi, max(lo, start) + floor(t / every))

where hi is its configured longest length. L_t depends on the step alone, so a resumed run
draws what an uninterrupted one would. Evaluation always uses the full task.
"""

from __future__ import annotations

from cogdsl.tasks.base import Task


def longest_length(step: int, start: int, every: int, shortest: int, longest: int) -> int:
    """L_t = min(longest, max(shortest, start) + floor(step / every)); ``every`` <= 0: no curriculum."""
    if every <= 0:
        return longest
    return min(longest, max(shortest, start) + step // every)


class LengthCurriculum:
    """The task to draw training batches from at each step (one instance per longest length, cached)."""

    def __init__(self, task: Task, start: int, every: int):
        self.task, self.start, self.every = task, start, every
        self.active = every > 0
        if self.active:
            if task.length_params is None:
                from cogdsl.errors import UsageError

                raise UsageError(f"curriculum_every: task '{task.name}' has no lengths for a curriculum to raise")
            self.shortest, self.longest = task.length_range()
        self._cache: dict[int, Task] = {}

    def task_at(self, step: int) -> Task:
        """The task with its longest length set to L_t (:func:`longest_length`) for ``step``."""
        if not self.active:
            return self.task
        longest = longest_length(step, self.start, self.every, self.shortest, self.longest)
        if longest == self.longest:
            return self.task
        if longest not in self._cache:
            high = self.task.length_params[1]
            self._cache[longest] = type(self.task)(**{**self.task.config, high: longest})
        return self._cache[longest]

    def reached_at(self) -> int:
        """The first step that draws from the full range (0 without a curriculum)."""
        if not self.active:
            return 0
        return max(0, self.longest - max(self.shortest, self.start)) * self.every
