"""The local backend's token budget and its out-of-memory recovery.

``TokenBudget`` is the most padded document tokens one forward pass may run (``batch_tokens``), with the price of
one more pass that the planner weighs against padding. ``run_in_budget`` runs a call's batches and, when one runs
out of memory, halves the budget and plans the rest again: no score is lost, repeated or misplaced. torch is
imported inside the functions that need it, so importing this module stays light.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from memreranker_core.backends.local.planning import plan_batches

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BATCH_TOKENS",
    "MIN_BATCH_TOKENS",
    "TokenBudget",
    "default_batch_tokens",
    "is_out_of_memory",
    "run_in_budget",
]

#: Padded document tokens per forward pass when ``batch_tokens`` is not given, by device type. CPU: 512, the
#: cheapest in memory, as 512, 2048 and 8192 run within 5 % of each other with the padding-aware planner
#: (BENCHMARKS.md). CUDA: see ``default_batch_tokens``, which also scales it down on small GPUs.
DEFAULT_BATCH_TOKENS = {"cuda": 32768, "cpu": 512}
#: The smallest budget the out-of-memory recovery goes down to before it gives up.
MIN_BATCH_TOKENS = 1


def default_batch_tokens(device: Any) -> int:
    """The token budget for ``device`` (a ``torch.device``) when the user gives none.

    CUDA devices with less than 40 GiB get 16384 tokens, under 16 GiB 8192; the out-of-memory recovery halves
    it further if a batch still does not fit.
    """
    if device.type != "cuda":
        return DEFAULT_BATCH_TOKENS.get(device.type, DEFAULT_BATCH_TOKENS["cpu"])
    import torch

    total_gib = torch.cuda.get_device_properties(device).total_memory / 2**30
    budget = DEFAULT_BATCH_TOKENS["cuda"]
    if total_gib < 40:
        budget //= 2
    if total_gib < 16:
        budget //= 2
    return budget


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocator failure (CUDA, CPU or MPS) that a smaller batch may avoid."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


class TokenBudget:
    """The token budget of one backend; halved, and kept halved, when a batch runs out of memory.

    The first reduction is logged as a warning, later ones at debug level, so a long-running service logs the
    problem once instead of once per call.

    Example:
        >>> budget = TokenBudget(4096)
        >>> budget.halve(), budget.value
        (True, 2048)
    """

    def __init__(self, value: int, pass_overhead: int = 0) -> None:
        self.value = value
        self.pass_overhead = pass_overhead
        self.reductions = 0

    def halve(self) -> bool:
        """Halve the budget; False when it is already at the minimum (the batch cannot get smaller)."""
        if self.value <= MIN_BATCH_TOKENS:
            return False
        old, self.value = self.value, max(MIN_BATCH_TOKENS, self.value // 2)
        self.reductions += 1
        log = logger.warning if self.reductions == 1 else logger.debug
        log(
            "out of memory with batch_tokens=%d; retrying with %d (kept for later calls; pass a smaller "
            "batch_tokens to avoid the retry)",
            old,
            self.value,
        )
        return True


def run_in_budget(
    lengths: Sequence[int],
    budget: TokenBudget,
    run: Callable[[list[int]], list[float]],
    on_oom: Callable[[], None] = lambda: None,
) -> list[float]:
    """Score every sequence with ``run(indices)`` in batches planned from ``budget``; recover from OOM.

    When a batch runs out of memory, the budget is halved and the sequences not yet scored are planned again. A
    batch's results are only stored once the whole batch has run, so no score is lost, repeated or misplaced.

    Args:
        lengths: Token count of each sequence.
        budget: The backend's budget (it may come back smaller).
        run: Scores the sequences at the given indices, in that order.
        on_oom: Called after an out-of-memory error, before the retry (frees the allocator's cache).

    Returns:
        One value per sequence, in input order.

    Raises:
        torch.OutOfMemoryError: Even a batch of one sequence does not fit.
    """
    results: list[float | None] = [None] * len(lengths)
    pending = list(range(len(lengths)))
    while pending:
        done: set[int] = set()
        indices: list[int] = []
        try:
            for batch in plan_batches([lengths[i] for i in pending], budget.value, budget.pass_overhead):
                indices = [pending[i] for i in batch]
                values = run(indices)
                for index, value in zip(indices, values, strict=True):
                    results[index] = value
                done.update(indices)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            on_oom()
            if len(indices) == 1 or not budget.halve():
                raise  # a single sequence does not fit: a smaller budget cannot help
        pending = [i for i in pending if i not in done]
    return [float(value) for value in results]  # type: ignore[arg-type]
