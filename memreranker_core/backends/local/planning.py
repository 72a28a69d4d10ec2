"""Planning one local call: prefix sharing or whole prompts, and the token-budgeted batches.

Every function here keeps the one rule of the local backend: each document gets exactly one score, its own, and
the score does not depend on how documents are grouped. Planning needs token counts only, never torch.

``plan(call, budget)`` turns a ``PreparedCall`` (``memreranker_core.prompt_tokens``) into a ``CallPlan``, once per
call: it prices both ways of running the call (the shared prefix once and every document against its cache, or
each whole prompt alone), each planned once by ``plan_batches``, and keeps the cheaper with its batches. That plan
is the one that runs (``budget.run_in_budget``) and the one the benchmarks record; only an out-of-memory retry
plans again, and only the documents not yet scored. One more forward pass is priced at ``default_pass_overhead``
tokens (``PASS_OVERHEAD``, per device type); ``TokenBudget`` is what a plan is cut to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from memreranker_core.prompt_tokens import PreparedCall

__all__ = [
    "MAX_CLASS_SPAN",
    "MIN_BATCH_TOKENS",
    "PASS_OVERHEAD",
    "CallPlan",
    "TokenBudget",
    "default_pass_overhead",
    "fill_batches",
    "layer_flops_per_token",
    "plan",
    "plan_batches",
    "plan_cost",
    "share_prefix",
]

#: The smallest budget the out-of-memory recovery goes down to before it gives up.
MIN_BATCH_TOKENS = 1


@dataclass(frozen=True)
class TokenBudget:
    """What a plan is cut to: the most padded document tokens per forward pass, and the price of one more pass.

    A backend keeps one in force; after an out-of-memory error it replaces it with ``halved()`` (kept for later
    calls).

    Attributes:
        value: Most padded tokens in one batch (``batch_tokens``).
        pass_overhead: The price of one more forward pass, in tokens, that the planner weighs against padding.
        reductions: How many times it was halved after running out of memory.

    Example:
        >>> TokenBudget(4096).halved()
        TokenBudget(value=2048, pass_overhead=0, reductions=1)
        >>> TokenBudget(1).halved() is None
        True
    """

    value: int
    pass_overhead: int = 0
    reductions: int = 0

    def halved(self) -> TokenBudget | None:
        """This budget at half the tokens; None when it is already at the minimum (a batch cannot get smaller)."""
        if self.value <= MIN_BATCH_TOKENS:
            return None
        return replace(self, value=max(MIN_BATCH_TOKENS, self.value // 2), reductions=self.reductions + 1)


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
    return _cheaper_way(prefix_length, lengths, budget)[0]


def _cheaper_way(prefix_length: int, lengths: Sequence[int], budget: TokenBudget) -> tuple[bool, list[list[int]]]:
    """``(shares the prefix, its batches)`` of the cheaper way to run a call; each way is planned once."""
    whole = [prefix_length + length for length in lengths]
    whole_batches = plan_batches(whole, budget.value, budget.pass_overhead)
    if len(lengths) < 2:
        return False, whole_batches
    shared_batches = plan_batches(lengths, budget.value, budget.pass_overhead)
    shared_cost = prefix_length + budget.pass_overhead + plan_cost(lengths, shared_batches, budget.pass_overhead)
    if shared_cost < plan_cost(whole, whole_batches, budget.pass_overhead):
        return True, shared_batches
    return False, whole_batches


@dataclass(frozen=True)
class CallPlan:
    """How one call runs: the shared prefix once and documents against it, or each whole prompt on its own.

    Attributes:
        call: The call's token ids.
        shares_prefix: Whether the shared prefix runs once and every row against its cache.
        sequences: What the batch rows run: each document's tokens (after the prefix), or each whole prompt.
        batches: Indices into ``sequences`` per forward pass, in the order they run (after an out-of-memory
            error, only the rows not yet scored are planned again, at half the budget).
        budget: The budget the batches were cut to.

    Example:
        >>> call = PreparedCall(shared=[1] * 80, sequences=[[2] * 40] * 50)
        >>> call_plan = plan(call, TokenBudget(4096, pass_overhead=500))
        >>> call_plan.shares_prefix, call_plan.offset, call_plan.passes
        (True, 80, 2)
    """

    call: PreparedCall
    shares_prefix: bool
    sequences: list[list[int]]
    batches: list[list[int]]
    budget: TokenBudget

    @property
    def offset(self) -> int:
        """Tokens before each row's first one: the shared prefix's length, or 0 for whole prompts."""
        return len(self.call.shared) if self.shares_prefix else 0

    @property
    def passes(self) -> int:
        """Forward passes of the call, the prefix's included."""
        return len(self.batches) + self.shares_prefix

    @property
    def padded_tokens(self) -> int:
        """Tokens the passes run, padding and the shared prefix included."""
        rows = sum(len(batch) * max(len(self.sequences[i]) for i in batch) for batch in self.batches)
        return rows + self.offset


def plan(call: PreparedCall, budget: TokenBudget) -> CallPlan:
    """The one plan of a call: the cheaper of the shared prefix and whole prompts, with its batches."""
    shares, batches = _cheaper_way(len(call.shared), [len(seq) for seq in call.sequences], budget)
    if shares:
        sequences = call.sequences
    else:  # one document, or too few to pay for a pass of its own over the prefix: whole prompts
        sequences = [call.pair_ids(i) for i in range(len(call.sequences))]
    return CallPlan(call=call, shares_prefix=shares, sequences=sequences, batches=batches, budget=budget)
