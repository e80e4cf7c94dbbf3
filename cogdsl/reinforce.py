"""REINFORCE for blocks that sample: hard attention, RAM's glimpses and hard (D-NTM) addressing.

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

Each decision names its reward. ``"success"`` is the task's 0/1 reward above. ``"likelihood"``
is the log-likelihood of the targets, log p(y | x) = -loss of each sequence, centred and scaled
by its mean and standard deviation over the batch, as the D-NTM paper trains discrete
addressing: a graded reward that still says something when no sequence is yet right.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Decision:
    """One step of one sampling block: each a (B,) tensor, the weight of its entropy bonus, and
    which reward it learns from (``"success"`` or ``"likelihood"``)."""

    log_prob: torch.Tensor
    baseline: torch.Tensor
    entropy: torch.Tensor
    entropy_weight: float = 0.0
    reward: str = "success"


def standardized(values: torch.Tensor) -> torch.Tensor:
    """(x - mean) / (std + 1e-6) over the batch, (B,) → (B,); zeros for a batch of one."""
    if values.numel() < 2:
        return torch.zeros_like(values)
    return (values - values.mean()) / (values.std() + 1e-6)


def reinforce_loss(decisions: list[Decision], reward: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
    """The REINFORCE surrogate loss of the module docstring, summed over ``decisions``.

    decisions: every step's :class:`Decision` (each (B,)); reward: R, (B,), or R by the name
    each decision asks for (``"success"``, ``"likelihood"``) → a scalar.
    """
    rewards = reward if isinstance(reward, dict) else {"success": reward}
    total = next(iter(rewards.values())).new_zeros(())
    for decision in decisions:
        advantage = rewards[decision.reward].detach() - decision.baseline
        total = total + (-(advantage.detach() * decision.log_prob) + advantage.pow(2)
                         - decision.entropy_weight * decision.entropy).mean()
    return total
