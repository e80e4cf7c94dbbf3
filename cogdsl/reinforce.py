"""REINFORCE for blocks that sample: hard attention and RAM's glimpses.

A block that samples a discrete choice (an element to attend to) or a location (where to
look) cannot pass gradients through the sample. It records, at every step, a
:class:`Decision`: the log-probability of what it sampled under its policy, the reward it
expected (a learned baseline b_t, from its query, with no gradient into the query) and the
policy's entropy. After the forward pass the task scores each sequence with a reward R
(1 for a correct answer, :meth:`cogdsl.tasks.base.Task.reward`) and training adds, for each
decision (Williams 1992; Mnih et al. 2014, "Recurrent Models of Visual Attention", 3.3;
Xu et al. 2015, "Show, Attend and Tell", 4.1)::

    L = mean over the batch of  sum_t [ -(R - b_t) log pi(a_t)   (the policy, R - b_t held fixed)
                                        + (R - b_t)^2            (the baseline's regression)
                                        - beta H(pi_t) ]         (an entropy bonus, beta >= 0)

The first term's gradient is the REINFORCE estimate of -d E[R] / d theta; subtracting the
baseline lowers its variance without biasing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Decision:
    """One step of one sampling block: each a (B,) tensor, and the weight of its entropy bonus."""

    log_prob: torch.Tensor
    baseline: torch.Tensor
    entropy: torch.Tensor
    entropy_weight: float = 0.0


def reinforce_loss(decisions: list[Decision], reward: torch.Tensor) -> torch.Tensor:
    """The REINFORCE surrogate loss of the module docstring, summed over ``decisions``.

    decisions: every step's :class:`Decision` (each (B,)); reward: R, (B,) → a scalar.
    """
    reward = reward.detach()
    total = reward.new_zeros(())
    for decision in decisions:
        advantage = reward - decision.baseline
        total = total + (-(advantage.detach() * decision.log_prob) + advantage.pow(2)
                         - decision.entropy_weight * decision.entropy).mean()
    return total
