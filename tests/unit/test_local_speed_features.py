"""Speed features of the local backend keep every score right: OOM recovery, the shared-prefix cache, budgets."""

from __future__ import annotations

import importlib.util
import logging

import pytest

from memreranker_core import MemReranker
from memreranker_core.backends.local import TokenBudget, default_batch_tokens, plan_batches, run_in_budget
from memreranker_core.errors import BackendError, ConfigurationError
from tests.support.golden_inputs import HARD_CASES, synthetic_memories

torch = pytest.importorskip("torch")
QUERY = "What did Melanie paint?"
DOCUMENTS = synthetic_memories(30, seed=21) + HARD_CASES[:6]
SAME = 2e-6


@pytest.fixture(scope="module")
def baseline(tiny_reranker):
    return tiny_reranker.score(QUERY, DOCUMENTS)


def _against_the_prefix(forward_kwargs) -> bool:
    """Whether a backbone forward runs documents against the shared prefix's cache (not the prefix itself)."""
    return any(forward_kwargs.get(name) is not None for name in ("cache", "past_key_values"))


def _fail_batches(reranker, monkeypatch, failures):
    """Make the inner model raise OutOfMemoryError on the next ``failures`` batch forwards (rows > 1 or any)."""
    inner = reranker.backend.loaded.model.model
    real_forward = inner.forward
    calls = {"batch": 0, "failed": 0}

    def forward(*args, **kwargs):
        if _against_the_prefix(kwargs):  # a document batch, not the shared prefix
            calls["batch"] += 1
            if calls["failed"] < failures(kwargs["input_ids"]):
                calls["failed"] += 1
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(inner, "forward", forward)
    return calls


def test_out_of_memory_halves_the_budget_logs_once_and_keeps_every_score(
    tiny_model_path, baseline, monkeypatch, caplog
):
    reranker = MemReranker(model=str(tiny_model_path), device="cpu", batch_tokens=1024).warm_up()
    calls = _fail_batches(reranker, monkeypatch, lambda ids: 1)
    with caplog.at_level(logging.DEBUG, logger="memreranker_core.backends.local.budget"):
        scores = reranker.score(QUERY, DOCUMENTS)
    assert calls["failed"] == 1
    assert reranker.backend.budget.value == 512
    assert scores == pytest.approx(baseline, abs=SAME)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "batch_tokens=1024" in warnings[0].getMessage()


def test_repeated_out_of_memory_keeps_halving_but_warns_only_once(tiny_model_path, baseline, monkeypatch, caplog):
    reranker = MemReranker(model=str(tiny_model_path), device="cpu", batch_tokens=4096).warm_up()
    _fail_batches(reranker, monkeypatch, lambda ids: 3)
    with caplog.at_level(logging.DEBUG, logger="memreranker_core.backends.local.budget"):
        first = reranker.score(QUERY, DOCUMENTS)
        second = reranker.score(QUERY, DOCUMENTS)
    assert reranker.backend.budget.value == 512
    assert first == pytest.approx(baseline, abs=SAME) and second == pytest.approx(baseline, abs=SAME)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert "batch_tokens" in str(reranker.describe())


def test_out_of_memory_after_some_batches_scored_loses_and_repeats_nothing(tiny_model_path, baseline, monkeypatch):
    reranker = MemReranker(model=str(tiny_model_path), device="cpu", batch_tokens=120).warm_up()
    inner = reranker.backend.loaded.model.model
    real_forward = inner.forward
    seen = {"batches": 0}

    def forward(*args, **kwargs):
        if _against_the_prefix(kwargs):
            seen["batches"] += 1
            if seen["batches"] == 3:  # two batches are already scored when the third fails
                raise torch.OutOfMemoryError("simulated")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(inner, "forward", forward)
    assert reranker.score(QUERY, DOCUMENTS) == pytest.approx(baseline, abs=SAME)
    assert reranker.backend.budget.value == 60


def test_a_single_document_that_never_fits_raises_a_typed_error(tiny_model_path, monkeypatch):
    reranker = MemReranker(model=str(tiny_model_path), device="cpu", batch_tokens=64).warm_up()
    _fail_batches(reranker, monkeypatch, lambda ids: 10**9)
    with pytest.raises(BackendError, match="out of memory even with one document per batch"):
        reranker.score(QUERY, DOCUMENTS[:3])


def test_errors_other_than_out_of_memory_are_not_retried(tiny_model_path, monkeypatch):
    reranker = MemReranker(model=str(tiny_model_path), device="cpu", batch_tokens=2048).warm_up()
    inner = reranker.backend.loaded.model.model

    def forward(*args, **kwargs):
        if _against_the_prefix(kwargs):
            raise ValueError("a real bug")
        return type(inner).forward(inner, *args, **kwargs)

    monkeypatch.setattr(inner, "forward", forward)
    with pytest.raises(ValueError, match="a real bug"):
        reranker.score(QUERY, DOCUMENTS)
    assert reranker.backend.budget.value == 2048


def test_run_in_budget_returns_values_in_input_order_across_retries():
    lengths = [7, 3, 9, 1, 5, 5, 2]
    budget = TokenBudget(20)
    failed, kept = [], []

    def run(indices):
        if len(indices) > 1 and not failed:
            failed.append(list(indices))
            raise torch.OutOfMemoryError("simulated")
        return [index * 10.0 for index in indices]

    ran = run_in_budget(lengths, plan_batches(lengths, budget.value), budget, run, on_budget=kept.append)
    assert ran.values == [index * 10.0 for index in range(len(lengths))]
    assert failed and [b.value for b in kept] == [10]
    assert sorted(i for batch in ran.batches for i in batch) == list(range(len(lengths)))


def test_the_shared_prefix_cache_stores_nothing_during_the_forward():
    pytest.importorskip("transformers")
    from memreranker_core.backends.local import shared_prefix_cache

    prefix = [(torch.randn(1, 2, 5, 16), torch.randn(1, 2, 5, 16)) for _ in range(2)]
    cache = shared_prefix_cache(prefix, rows=3)
    keys, values = cache.layers[0].update(torch.ones(3, 2, 4, 16), torch.zeros(3, 2, 4, 16), 0)
    assert keys.shape == (3, 2, 9, 16) and values.shape == (3, 2, 9, 16)
    assert cache.get_seq_length() == 5, "the cache must keep showing only the prefix"
    assert cache.layers[0].keys.data_ptr() == prefix[0][0].data_ptr(), "rows must share the prefix, not copy it"


def test_default_budget_depends_on_the_device():
    assert default_batch_tokens(torch.device("cpu")) == 512
    if torch.cuda.is_available():
        assert 4096 <= default_batch_tokens(torch.device("cuda")) <= 32768


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is not None, reason="flash-attn is installed here")
def test_flash_attention_without_the_package_is_a_configuration_error_with_a_fix():
    with pytest.raises(ConfigurationError, match="pip install flash-attn"):
        MemReranker(model="unused", attn_implementation="flash_attention_2")


def _count_forwards(reranker, monkeypatch):
    """Record each backbone forward: (rows, runs against the shared prefix's cache)."""
    inner = reranker.backend.loaded.model.model
    real_forward = inner.forward
    seen = []

    def forward(*args, **kwargs):
        seen.append((kwargs["input_ids"].shape[0], _against_the_prefix(kwargs)))
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(inner, "forward", forward)
    return seen


def test_one_document_runs_in_one_forward_pass_without_a_prefix_pass(tiny_model_path, baseline, monkeypatch):
    reranker = MemReranker(model=str(tiny_model_path), device="cpu").warm_up()
    seen = _count_forwards(reranker, monkeypatch)
    assert reranker.score(QUERY, DOCUMENTS[:1]) == pytest.approx(baseline[:1], abs=SAME)
    assert seen == [(1, False)], "a single document must cost one forward pass, not a prefix pass and a batch"


def test_whole_prompts_and_the_shared_prefix_give_the_same_scores(tiny_model_path, baseline, monkeypatch):
    reranker = MemReranker(model=str(tiny_model_path), device="cpu", batch_tokens=10**6).warm_up()
    seen = _count_forwards(reranker, monkeypatch)
    reranker.backend.set_budget(pass_overhead=10**9)  # a pass costs more than any repeated prefix: whole prompts
    whole = reranker.score(QUERY, DOCUMENTS)
    assert seen == [(len(DOCUMENTS), False)]
    seen.clear()
    reranker.backend.set_budget(pass_overhead=0)  # passes are free: share the prefix, no padding at all
    shared = reranker.score(QUERY, DOCUMENTS)
    assert seen[0] == (1, False) and len(seen) > 2 and all(against for _, against in seen[1:])
    assert sum(rows for rows, _ in seen[1:]) == len(DOCUMENTS)
    assert whole == pytest.approx(baseline, abs=SAME) and shared == pytest.approx(baseline, abs=SAME)


def test_out_of_memory_with_whole_prompts_halves_the_budget_and_keeps_every_score(
    tiny_model_path, baseline, monkeypatch
):
    reranker = MemReranker(model=str(tiny_model_path), device="cpu", batch_tokens=10**6).warm_up()
    reranker.backend.set_budget(pass_overhead=10**9)
    inner = reranker.backend.loaded.model.model
    real_forward = inner.forward

    def forward(*args, **kwargs):
        if kwargs["input_ids"].shape[0] > 8:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(inner, "forward", forward)
    assert reranker.score(QUERY, DOCUMENTS) == pytest.approx(baseline, abs=SAME)
    assert reranker.backend.budget.value < 10**6


def test_the_public_forward_steps_give_the_backends_own_log_odds(tiny_reranker):
    from memreranker_core.backends.local import run_batch, run_prefix
    from memreranker_core.types import ScoreRequest

    backend = tiny_reranker.backend
    call = backend.prepare(ScoreRequest(QUERY, tuple(DOCUMENTS), backend.loaded.default_instruction))
    logits = tiny_reranker.score(QUERY, DOCUMENTS, return_logits=True)
    with torch.inference_mode():
        prefix = run_prefix(backend.loaded, call.shared)
        against_prefix = run_batch(backend.loaded, call.sequences, prefix)
        whole = run_batch(backend.loaded, [call.pair_ids(i) for i in range(len(DOCUMENTS))])
    assert prefix.length == len(call.shared)
    assert against_prefix == pytest.approx(logits, abs=1e-5) and whole == pytest.approx(logits, abs=1e-5)


def test_set_budget_changes_later_plans_and_refuses_nonsense(tiny_model_path):
    from memreranker_core.types import ScoreRequest

    reranker = MemReranker(model=str(tiny_model_path), device="cpu", batch_tokens=4096).warm_up()
    backend = reranker.backend
    request = ScoreRequest(QUERY, tuple(DOCUMENTS), backend.loaded.default_instruction)
    assert len(backend.plan(request).batches) == 1
    assert backend.set_budget(64).value == 64 and backend.budget.value == 64
    small = backend.plan(request)
    assert len(small.batches) > 1
    assert all(len(b) == 1 or len(b) * max(len(small.sequences[i]) for i in b) <= 64 for b in small.batches)
    assert backend.set_budget(pass_overhead=10**9).value == 64  # None keeps the other part
    assert backend.budget.pass_overhead == 10**9 and reranker.describe()["batch_tokens"] == 64
    assert backend.set_budget(10**6).pass_overhead == 10**9
    assert not backend.plan(request).shares_prefix  # one pass of whole prompts beats a prefix pass and a batch
    for bad in (0, -1, 1.5, True, "64"):
        with pytest.raises(ConfigurationError, match="batch_tokens must be a whole number"):
            backend.set_budget(bad)
