"""The label schedule of Christiano et al. (2017): a share of the budget asked about the initial
policy, then a rate proportional to c / (T + c) after T env steps."""

from __future__ import annotations

import math


def labels_due(step: int, total_steps: int, num_labels: int, num_initial: int, decay_steps: float) -> int:
    """Labels to have asked by env step ``step``: the initial ones, then a rate proportional to
    c / (T + c), scaled so that the whole budget is asked by ``total_steps``."""
    if total_steps <= 0:
        return num_labels
    fraction = math.log1p(step / decay_steps) / math.log1p(total_steps / decay_steps)
    return min(num_labels, num_initial + round((num_labels - num_initial) * min(1.0, fraction)))
