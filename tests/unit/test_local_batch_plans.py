"""The local backend's batch planner: every document once, within the budget, with little padding or few passes."""

from __future__ import annotations

import itertools
import random
from types import SimpleNamespace

import pytest

from memreranker_core.backends.local import (
    TokenBudget,
    default_pass_overhead,
    plan_batches,
    plan_cost,
    share_prefix,
)

QWEN3_0_6B = SimpleNamespace(
    hidden_size=1024, num_attention_heads=16, num_key_value_heads=8, head_dim=128, intermediate_size=3072
)
QWEN3_4B = SimpleNamespace(
    hidden_size=2560, num_attention_heads=32, num_key_value_heads=8, head_dim=128, intermediate_size=9728
)


def _random_cases(count: int, seed: int, most: int = 9):
    rng = random.Random(seed)
    for _ in range(count):
        lengths = [rng.randint(1, 60) for _ in range(rng.randint(1, most))]
        yield lengths, rng.choice([1, 30, 60, 100, 200, 10_000]), rng.choice([0, 5, 20, 100, 1000])


def _one_greedy_pass(lengths: list[int], batch_tokens: int) -> list[list[int]]:
    """The planner before padding-aware classes: fill batches longest first until the budget is reached."""
    batches: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= batch_tokens:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


def _best_contiguous_plan_cost(lengths: list[int], batch_tokens: int, overhead: int) -> int:
    """Brute force: the cheapest cut of the longest-first order into batches within the budget."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    best = None
    for mask in range(1 << (len(order) - 1)):
        cuts = [0, *[i + 1 for i in range(len(order) - 1) if mask >> i & 1], len(order)]
        batches = [order[a:b] for a, b in itertools.pairwise(cuts)]
        if any(len(b) > 1 and len(b) * max(lengths[i] for i in b) > batch_tokens for b in batches):
            continue
        cost = plan_cost(lengths, batches, overhead)
        best = cost if best is None else min(best, cost)
    return best


def test_every_index_lands_in_exactly_one_batch_within_the_budget_whatever_the_overhead():
    for lengths, batch_tokens, overhead in _random_cases(500, seed=1, most=40):
        batches = plan_batches(lengths, batch_tokens, overhead)
        assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
        for batch in batches:
            assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= batch_tokens


def test_plans_never_cost_more_than_one_greedy_pass_over_the_sorted_lengths():
    for lengths, batch_tokens, overhead in _random_cases(500, seed=2, most=40):
        ours = plan_cost(lengths, plan_batches(lengths, batch_tokens, overhead), overhead)
        assert ours <= plan_cost(lengths, _one_greedy_pass(lengths, batch_tokens), overhead)


def test_plans_cost_within_two_percent_of_the_best_cut_of_the_sorted_order():
    for lengths, batch_tokens, overhead in _random_cases(400, seed=3):
        ours = plan_cost(lengths, plan_batches(lengths, batch_tokens, overhead), overhead)
        assert ours <= 1.02 * _best_contiguous_plan_cost(lengths, batch_tokens, overhead)


def test_without_a_pass_overhead_no_batch_pads_any_sequence():
    lengths = [5, 40, 3, 40, 17, 5, 99, 8, 17, 17]
    for batch in plan_batches(lengths, batch_tokens=10_000, pass_overhead=0):
        assert len({lengths[i] for i in batch}) == 1


def test_a_large_pass_overhead_gives_the_fewest_batches_the_budget_allows():
    lengths = [5, 40, 3, 40, 17, 5, 99, 8, 17, 17]
    assert plan_batches(lengths, batch_tokens=10_000, pass_overhead=10**6) == [
        sorted(range(len(lengths)), key=lambda i: -lengths[i])
    ]
    assert len(plan_batches(lengths, batch_tokens=200, pass_overhead=10**6)) == len(_one_greedy_pass(lengths, 200))


def test_mixed_lengths_are_split_into_classes_when_padding_costs_more_than_a_pass():
    memories = [120] * 5 + [30] * 45  # a few long turns among many short ones, as in a LoCoMo candidate list
    batches = plan_batches(memories, batch_tokens=32_768, pass_overhead=500)
    assert [len(batch) for batch in batches] == [5, 45]
    assert plan_cost(memories, batches, 500) < plan_cost(memories, _one_greedy_pass(memories, 32_768), 500)


def test_planning_ten_thousand_documents_of_distinct_lengths_stays_quick():
    import time

    rng = random.Random(4)
    lengths = [rng.randint(1, 8192) for _ in range(10_000)]
    started = time.perf_counter()
    batches = plan_batches(lengths, batch_tokens=32_768, pass_overhead=600)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert time.perf_counter() - started < 30, "the planner must stay linear-ish in the distinct lengths"


def test_one_document_runs_as_one_whole_prompt():
    assert not share_prefix(80, [40], TokenBudget(4096, pass_overhead=0))


def test_many_documents_share_the_prefix_and_few_do_not_when_a_pass_costs_more_than_the_repeats():
    budget = TokenBudget(32_768, pass_overhead=600)
    assert share_prefix(80, [40] * 50, budget)  # 49 repeats of 80 tokens outweigh one more pass
    assert not share_prefix(80, [40] * 3, budget)  # 2 repeats of 80 tokens do not
    assert share_prefix(80, [40] * 3, TokenBudget(32_768, pass_overhead=0))


def test_the_default_pass_overhead_grows_as_the_model_narrows_and_on_gpus():
    cpu, cuda = SimpleNamespace(type="cpu"), SimpleNamespace(type="cuda")
    assert default_pass_overhead(cpu, QWEN3_4B) == pytest.approx(39, abs=1)
    assert default_pass_overhead(cuda, QWEN3_0_6B) > default_pass_overhead(cuda, QWEN3_4B) > 200
    assert default_pass_overhead(SimpleNamespace(type="mps"), QWEN3_4B) == default_pass_overhead(cpu, QWEN3_4B)
