"""Running a call's planned batches within the token budget, and recovering when one runs out of memory.

``run_in_budget`` runs the batches of a ``CallPlan`` (``planning``) as planned, checking at every batch boundary
whether the call was stopped. When a batch runs out of memory, it halves the budget and plans again only the rows
not yet scored: no score is lost, repeated or misplaced. ``default_batch_tokens`` is the budget of a device when
the user gives none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from memreranker_core.backends.local.planning import TokenBudget, plan_batches

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_BATCH_TOKENS", "Ran", "default_batch_tokens", "is_out_of_memory", "run_in_budget"]

#: Padded document tokens per forward pass when ``batch_tokens`` is not given, by device type. CPU: 512, the
#: cheapest in memory, as 512, 2048 and 8192 run within 5 % of each other with the padding-aware planner
#: (BENCHMARKS.md). CUDA: see ``default_batch_tokens``, which also scales it down on small GPUs.
DEFAULT_BATCH_TOKENS = {"cuda": 32768, "cpu": 512}


def default_batch_tokens(device: torch.device) -> int:
    """The token budget for ``device`` when the user gives none.

    CUDA devices with less than 40 GiB get 16384 tokens, under 16 GiB 8192; the out-of-memory recovery halves
    it further if a batch still does not fit.

    Example:
        >>> default_batch_tokens(torch.device("cpu"))
        512
    """
    if device.type != "cuda":
        return DEFAULT_BATCH_TOKENS.get(device.type, DEFAULT_BATCH_TOKENS["cpu"])
    total_gib = torch.cuda.get_device_properties(device).total_memory / 2**30
    budget = DEFAULT_BATCH_TOKENS["cuda"]
    if total_gib < 40:
        budget //= 2
    if total_gib < 16:
        budget //= 2
    return budget


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocator failure (CUDA, CPU or MPS) that a smaller batch may avoid."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@dataclass(frozen=True)
class Ran:
    """What ``run_in_budget`` did.

    Attributes:
        values: One value per row, in input order.
        batches: The batches that ran to completion, in order (the plan's, when nothing ran out of memory).
    """

    values: list[float]
    batches: list[list[int]]


def _nothing(*_: object) -> None:
    return None


def run_in_budget(
    lengths: Sequence[int],
    batches: Sequence[Sequence[int]],
    budget: TokenBudget,
    run: Callable[[list[int]], list[float]],
    *,
    check: Callable[[], None] = _nothing,
    on_oom: Callable[[], None] = _nothing,
    on_budget: Callable[[TokenBudget], None] = _nothing,
) -> Ran:
    """Run ``batches`` (a plan's, cut to ``budget``) with ``run(indices)``; recover from out-of-memory errors.

    The batches run as given. When one runs out of memory, the budget is halved (a warning the first time a
    budget is halved, debug after) and only the rows not yet scored are planned again. A batch's values are kept
    only once the whole batch has run, so no score is lost, repeated or misplaced.

    Args:
        lengths: Token count of each row.
        batches: Indices into ``lengths`` per forward pass, every row once (``CallPlan.batches``).
        budget: The budget the batches were cut to.
        run: Scores the rows at the given indices, in that order.
        check: Called before every batch; raises to stop the call there (cancelled, closed).
        on_oom: Called after an out-of-memory error, before the retry (frees the allocator's cache).
        on_budget: Called with each halved budget, before the retry (the backend keeps it for later calls).

    Returns:
        The values in input order and the batches that ran.

    Raises:
        torch.OutOfMemoryError: Even a batch of one row does not fit.

    Example:
        >>> ran = run_in_budget([3, 5], [[1], [0]], TokenBudget(8), lambda rows: [10.0 * i for i in rows])
        >>> ran.values, ran.batches
        ([0.0, 10.0], [[1], [0]])
    """
    values: list[float | None] = [None] * len(lengths)
    done: list[list[int]] = []
    todo = [list(batch) for batch in batches]
    while todo:
        batch = todo.pop(0)
        check()
        try:
            scored = run(batch)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            on_oom()
            smaller = budget.halved() if len(batch) > 1 else None
            if smaller is None:
                raise  # a single row does not fit: a smaller budget cannot help
            _log_reduction(budget, smaller)
            budget = smaller
            on_budget(budget)
            pending = [index for part in [batch, *todo] for index in part]
            replanned = plan_batches([lengths[i] for i in pending], budget.value, budget.pass_overhead)
            todo = [[pending[i] for i in part] for part in replanned]
            continue
        for index, value in zip(batch, scored, strict=True):
            values[index] = value
        done.append(batch)
    return Ran(values=[float(value) for value in values], batches=done)  # type: ignore[arg-type]


def _log_reduction(old: TokenBudget, new: TokenBudget) -> None:
    log = logger.warning if new.reductions == 1 else logger.debug
    log(
        "out of memory with batch_tokens=%d; retrying with %d (kept for later calls; pass a smaller batch_tokens "
        "to avoid the retry)",
        old.value,
        new.value,
    )
