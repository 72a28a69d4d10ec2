"""Batching for the local backend: token-budget plans, the shared-prefix cache, out-of-memory recovery.

Every function here keeps the one rule of the local backend: each document gets exactly one score, its own, and
the score does not depend on how documents are grouped. torch and transformers are imported inside the functions
that need them, so importing this module stays light.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger(__name__)

#: Padded document tokens per forward pass when ``batch_tokens`` is not given, by device type. CPU: the best of a
#: sweep on a 2-core box (BENCHMARKS.md: 512 beat 2048 and 8192). CUDA: see ``default_batch_tokens``, which also
#: scales it down on small GPUs.
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


#: The fixed cost of one forward pass, counted in the tokens the device could have run instead, as
#: ``(tokens, flops_per_layer)``: ``tokens`` for streaming the weights once (the same for every model size, as
#: both scale with the parameters) plus ``flops_per_layer / (one token's FLOPs in one layer)`` for the kernel
#: launches and Python of each layer. CPU: fitted on this project's 2-core box, 1 thread (BENCHMARKS.md). CUDA:
#: estimated (150 us per layer at ~600 TFLOP/s; bf16 weights at ~3 TB/s), not yet measured on a GPU.
PASS_OVERHEAD = {"cpu": (39, 1.2e7), "cuda": (200, 9e10)}


def layer_flops_per_token(config: Any) -> float:
    """Matrix-multiply FLOPs of one token in one decoder layer of a Qwen3 ``config`` (attention scores aside)."""
    hidden, heads, kv_heads = config.hidden_size, config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    projections = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2  # q and o; k and v
    return 2.0 * (projections + 3 * hidden * config.intermediate_size)


def default_pass_overhead(device: Any, config: Any) -> int:
    """``PASS_OVERHEAD`` for ``device`` (a ``torch.device``) and a model ``config``, in padded tokens.

    Example:
        >>> from types import SimpleNamespace
        >>> qwen3_4b = SimpleNamespace(hidden_size=2560, num_attention_heads=32, num_key_value_heads=8,
        ...                            head_dim=128, intermediate_size=9728)
        >>> default_pass_overhead(SimpleNamespace(type="cpu"), qwen3_4b)
        39
    """
    tokens, flops_per_layer = PASS_OVERHEAD.get(device.type, PASS_OVERHEAD["cpu"])
    return round(tokens + flops_per_layer / layer_flops_per_token(config))


def plan_batches(lengths: Sequence[int], batch_tokens: int, pass_overhead: int = 0) -> list[list[int]]:
    """Group indices into right-padded batches of at most ``batch_tokens`` padded tokens, wasting little.

    A batch of ``count`` sequences costs ``count * longest`` padded tokens plus ``pass_overhead``, the fixed cost
    of one forward pass (kernel launches, Python) counted in tokens. Sequences are sorted longest first and cut
    into width classes by dynamic programming over their distinct lengths so that this total is smallest: a
    large overhead favours few wide batches, a small one many batches of nearly equal lengths (little padding).
    Each class is then filled greedily within the budget. A sequence longer than the budget gets a batch of its
    own. Every index appears in exactly one batch.

    Args:
        lengths: Token count of each sequence.
        batch_tokens: Most padded tokens in one batch.
        pass_overhead: Cost of one more forward pass, in padded tokens (0: padding is all that counts).

    Example:
        >>> plan_batches([5, 40, 3, 40], batch_tokens=80)
        [[1, 3], [0], [2]]
        >>> plan_batches([5, 40, 3, 40], batch_tokens=80, pass_overhead=50)
        [[1, 3], [0, 2]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    widths: list[int] = []  # distinct lengths, longest first
    counts: list[int] = []  # how many sequences have each
    for index in order:
        if widths and widths[-1] == lengths[index]:
            counts[-1] += 1
        else:
            widths.append(lengths[index])
            counts.append(1)
    classed: list[list[int]] = []
    position = 0
    for start, end in _width_classes(widths, counts, batch_tokens, pass_overhead):
        size = sum(counts[start:end])
        classed.extend(fill_batches(order[position : position + size], lengths, batch_tokens))
        position += size
    # The classes price each batch at its class's widest length; where the budget cuts a class into several
    # batches, one greedy pass over everything can come out cheaper. Keep whichever plan costs less.
    greedy = fill_batches(order, lengths, batch_tokens)
    if plan_cost(lengths, greedy, pass_overhead) < plan_cost(lengths, classed, pass_overhead):
        return greedy
    return classed


#: How many distinct lengths one width class may span at most: bounds the planner's work on calls with thousands
#: of distinct lengths (a class that wide pads its shortest members far more than one more pass costs).
MAX_CLASS_SPAN = 256


def _width_classes(widths: list[int], counts: list[int], batch_tokens: int, overhead: int) -> list[tuple[int, int]]:
    """Cut the distinct lengths (longest first) into ``[start, end)`` classes of least padded tokens + passes."""
    best = [0.0] + [float("inf")] * len(widths)  # best[k]: least cost of the first k distinct lengths
    cut = [0] * (len(widths) + 1)
    for end in range(1, len(widths) + 1):
        members = 0
        for start in range(end - 1, max(-1, end - 1 - MAX_CLASS_SPAN), -1):
            members += counts[start]
            rows = max(1, batch_tokens // widths[start])
            cost = best[start] + members * widths[start] + overhead * -(-members // rows)
            if cost < best[end]:
                best[end], cut[end] = cost, start
    classes: list[tuple[int, int]] = []
    end = len(widths)
    while end:
        classes.append((cut[end], end))
        end = cut[end]
    return classes[::-1]


def fill_batches(order: list[int], lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Greedy batches over ``order`` (indices, longest first): add while ``count * first length`` fits the budget.

    Example:
        >>> fill_batches([1, 3, 0, 2], [5, 40, 3, 40], batch_tokens=80)
        [[1, 3], [0, 2]]
    """
    batches: list[list[int]] = []
    for index in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= batch_tokens:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


def plan_cost(lengths: Sequence[int], batches: Sequence[Sequence[int]], pass_overhead: int) -> int:
    """What ``plan_batches`` minimises: padded tokens of every batch plus ``pass_overhead`` per batch."""
    return sum(len(batch) * max(lengths[i] for i in batch) + pass_overhead for batch in batches)


def share_prefix(prefix_length: int, lengths: Sequence[int], budget: TokenBudget) -> bool:
    """Whether to run the shared prefix once and the documents against its cache, or each whole prompt alone.

    Sharing saves ``prefix_length`` tokens per document but costs one more forward pass (the prefix's). For one
    document, or a few where that pass costs more than the repeated prefix tokens (a GPU's launch-bound small
    calls), running each whole prompt is cheaper. Both ways give the same scores.

    Example:
        >>> share_prefix(80, [40], TokenBudget(4096, pass_overhead=500))
        False
        >>> share_prefix(80, [40] * 50, TokenBudget(4096, pass_overhead=500))
        True
    """
    if len(lengths) < 2:
        return False
    whole = [prefix_length + length for length in lengths]
    whole_cost = plan_cost(whole, plan_batches(whole, budget.value, budget.pass_overhead), budget.pass_overhead)
    shared_plan = plan_batches(lengths, budget.value, budget.pass_overhead)
    shared_cost = prefix_length + budget.pass_overhead + plan_cost(lengths, shared_plan, budget.pass_overhead)
    return shared_cost < whole_cost


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


def shared_prefix_cache(prefix: Sequence[tuple[Any, Any]], rows: int) -> Any:
    """A transformers ``Cache`` that shows every row the shared prefix's keys and values, without storing more.

    Each layer's prefix keys/values (batch size 1) are broadcast to ``rows`` as a view. During the forward pass a
    layer concatenates them with the batch's own keys/values for attention and then drops the result, so memory
    holds one layer's concatenation at a time instead of every layer's.
    """
    from transformers.cache_utils import Cache

    return Cache(layers=[_prefix_layer(keys, values, rows) for keys, values in prefix])


def _shared_prefix_layer_class() -> type:
    from transformers.cache_utils import DynamicLayer

    class SharedPrefixLayer(DynamicLayer):
        """A read-only cache layer holding a broadcast prefix; ``update`` returns prefix + new, stores nothing."""

        def __init__(self, keys: Any, values: Any, rows: int) -> None:
            super().__init__()
            self.dtype, self.device = keys.dtype, keys.device
            self.keys = keys.expand(rows, -1, -1, -1)
            self.values = values.expand(rows, -1, -1, -1)
            self.is_initialized = True

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            import torch

            return torch.cat([self.keys, key_states], dim=-2), torch.cat([self.values, value_states], dim=-2)

    return SharedPrefixLayer


def _prefix_layer(keys: Any, values: Any, rows: int) -> Any:
    """A ``SharedPrefixLayer`` (the class is defined on first use, so that transformers loads lazily)."""
    global _LAYER_CLASS
    if _LAYER_CLASS is None:
        _LAYER_CLASS = _shared_prefix_layer_class()
    return _LAYER_CLASS(keys, values, rows)


_LAYER_CLASS: type | None = None
