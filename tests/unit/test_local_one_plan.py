"""One plan per local call: the plan ``LocalBackend.plan`` shows (the one the benchmarks record) is built once and
is exactly what runs, batch for batch; only an out-of-memory retry plans again, and only what is left."""

from __future__ import annotations

import pytest

from memreranker_core import MemReranker
from memreranker_core.backends.local import backend as backend_module
from memreranker_core.backends.local import budget as budget_module
from memreranker_core.backends.local import planning
from memreranker_core.types import ScoreRequest
from tests.support.golden_inputs import HARD_CASES, synthetic_memories

torch = pytest.importorskip("torch")
QUERY = "What did Melanie paint?"
DOCUMENTS = synthetic_memories(30, seed=41) + HARD_CASES[:6]


def _record(reranker: MemReranker, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Count plan builds and batch plannings, keep the plan built, and record the rows of every forward pass."""
    seen: dict = {"plans": [], "plan_batches": {"planning": 0, "budget": 0}, "rows": []}
    real_plan = backend_module.plan

    def plan(call, budget):
        built = real_plan(call, budget)
        seen["plans"].append(built)
        return built

    def counted(where, real):
        def plan_batches(*args, **kwargs):
            seen["plan_batches"][where] += 1
            return real(*args, **kwargs)

        return plan_batches

    monkeypatch.setattr(backend_module, "plan", plan)
    monkeypatch.setattr(planning, "plan_batches", counted("planning", planning.plan_batches))
    monkeypatch.setattr(budget_module, "plan_batches", counted("budget", budget_module.plan_batches))
    inner = reranker.backend.loaded.model.model
    real_forward = inner.forward

    def forward(*args, **kwargs):
        seen["rows"].append(kwargs["input_ids"].tolist())
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(inner, "forward", forward)
    return seen


def _expected_passes(call_plan) -> list[list[list[int]]]:
    """The rows each pass of ``call_plan`` runs, right-padded with the pad id: its prefix, then its batches."""
    pad = None
    passes = [[call_plan.call.shared]] if call_plan.shares_prefix else []
    for batch in call_plan.batches:
        width = max(len(call_plan.sequences[i]) for i in batch)
        passes.append([call_plan.sequences[i] + [pad] * (width - len(call_plan.sequences[i])) for i in batch])
    return passes


def _same_rows(ran: list[list[int]], planned: list[list[int | None]]) -> bool:
    return len(ran) == len(planned) and all(
        len(a) == len(b) and all(y is None or x == y for x, y in zip(a, b, strict=True))
        for a, b in zip(ran, planned, strict=True)
    )


@pytest.mark.parametrize("pass_overhead", [0, 40, 10**9], ids=["shared-prefix", "default-ish", "whole-prompts"])
def test_a_call_builds_one_plan_and_runs_exactly_its_batches(tiny_model_path, monkeypatch, pass_overhead):
    reranker = MemReranker(model=str(tiny_model_path), device="cpu", batch_tokens=160).warm_up()
    reranker.backend.set_budget(pass_overhead=pass_overhead)
    request = ScoreRequest(QUERY, tuple(DOCUMENTS), reranker.backend.loaded.default_instruction)
    recorded = reranker.backend.plan(request)  # what the benchmarks record
    seen = _record(reranker, monkeypatch)
    reranker.score(QUERY, DOCUMENTS)
    assert len(seen["plans"]) == 1, "one plan per call"
    ran_plan = seen["plans"][0]
    assert ran_plan == recorded, "the plan the benchmarks record is the plan that runs"
    assert seen["plan_batches"] == {"planning": 2, "budget": 0}, "each way (shared prefix, whole prompts) once"
    assert len(ran_plan.batches) > 1
    planned = _expected_passes(ran_plan)
    assert len(seen["rows"]) == len(planned) == ran_plan.passes
    assert all(_same_rows(ran, want) for ran, want in zip(seen["rows"], planned, strict=True))


def test_an_out_of_memory_retry_plans_again_only_the_documents_left(tiny_model_path, monkeypatch):
    reranker = MemReranker(model=str(tiny_model_path), device="cpu", batch_tokens=160).warm_up()
    reranker.backend.set_budget(pass_overhead=40)
    baseline = reranker.score(QUERY, DOCUMENTS)
    seen = _record(reranker, monkeypatch)
    inner = reranker.backend.loaded.model.model
    recording_forward = inner.forward
    state = {"batches": 0, "failed_at": None}

    def forward(*args, **kwargs):
        against_prefix = kwargs.get("past_key_values") is not None or kwargs.get("cache") is not None
        if against_prefix and state["failed_at"] is None:
            state["batches"] += 1
            if state["batches"] > 1 and kwargs["input_ids"].shape[0] > 1:  # a batch of several, after one scored
                state["failed_at"] = state["batches"]
                raise torch.OutOfMemoryError("simulated")
        return recording_forward(*args, **kwargs)

    monkeypatch.setattr(inner, "forward", forward)
    assert reranker.score(QUERY, DOCUMENTS) == pytest.approx(baseline, abs=2e-6)
    call_plan = seen["plans"][0]
    scored = call_plan.batches[: state["failed_at"] - 1]
    assert state["failed_at"] is not None and len(seen["plans"]) == 1 and seen["plan_batches"]["budget"] == 1
    after_retry = seen["rows"][1 + len(scored) :]  # the prefix and the batches scored before the failure
    assert sum(map(len, after_retry)) == len(DOCUMENTS) - sum(map(len, scored)), "only the documents left, once"
    assert reranker.backend.budget.value == 80
