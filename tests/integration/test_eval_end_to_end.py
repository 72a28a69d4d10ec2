"""``memreranker eval locomo`` end to end: the tiny offline model on real LoCoMo questions, and the hosted backend
against the loopback ``/rerank`` server (scores travel over real HTTP and come back on the right candidates)."""

from __future__ import annotations

import io
import json

import pytest

from memreranker_core import MemReranker
from memreranker_core.cli import main
from memreranker_core.documents import render_document
from memreranker_core.eval.locomo import load_locomo
from memreranker_core.eval.runner import DEFAULT_TEMPLATE, OVERALL, EvalConfig, run_locomo, summarize
from tests.support.rerank_server import RerankServer

pytest.importorskip("bm25s")
pytest.importorskip("ranx")
pytest.importorskip("matplotlib")

SAMPLE = [
    {
        "sample_id": "conv-a",
        "conversation": {
            "speaker_a": "Alice",
            "speaker_b": "Bob",
            "session_1_date_time": "1 May 2023",
            "session_1": [
                {"speaker": "Alice", "dia_id": "D1:1", "text": "I adopted a puppy named Biscuit."},
                {"speaker": "Bob", "dia_id": "D1:2", "text": "I started learning the violin."},
                {"speaker": "Alice", "dia_id": "D1:3", "text": "Biscuit chewed my shoes again."},
            ],
            "session_2_date_time": "9 June 2023",
            "session_2": [
                {"speaker": "Bob", "dia_id": "D2:1", "text": "My recital went well yesterday."},
                {"speaker": "Alice", "dia_id": "D2:2", "text": "I moved to Denver for a new job."},
            ],
        },
        "qa": [
            {"question": "When did Bob perform his violin recital?", "evidence": ["D2:1; D1:2"], "category": 2},
            {"question": "What does Alice's puppy like to chew?", "evidence": ["D1:3"], "category": 4},
            {"question": "Where does Alice work now?", "evidence": ["D2:2"], "category": 5},
        ],
    }
]
#: The evidence texts of each question: the loopback server's scorer knows the answers.
EVIDENCE_TEXTS = {
    "When did Bob perform his violin recital?": ("My recital went well", "learning the violin"),
    "What does Alice's puppy like to chew?": ("chewed my shoes",),
    "Where does Alice work now?": ("moved to Denver",),
}


def oracle_scorer(query: str, documents: list[str]) -> list[float]:
    """P(yes) = 0.9 for evidence turns, else 0.1 minus a per-position step (so non-evidence never ties)."""
    texts = next(value for key, value in EVIDENCE_TEXTS.items() if key in query)
    return [0.9 if any(text in doc for text in texts) else 0.1 - 0.01 * i for i, doc in enumerate(documents)]


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), stdout=out, stdin=io.StringIO()), out.getvalue()


def test_tiny_model_run_on_real_locomo_questions_scores_every_candidate_like_the_core(
    locomo_path, tiny_model_path, tiny_reranker, tmp_path
):
    out = tmp_path / "out"
    code, printed = run_cli(
        "eval",
        "locomo",
        "--data",
        str(locomo_path),
        "--model",
        str(tiny_model_path),
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--limit",
        "3",
        "--candidates",
        "8",
        "--out",
        str(out),
        "--no-progress",
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["reranker"]["backend"] == "local"
    assert results["reranker"]["document_template"] == DEFAULT_TEMPLATE
    overall = results["groups"][OVERALL]
    assert overall["questions"] == 3
    assert set(overall["reranked"]) == set(overall["first_stage"]) | {"F1"}
    assert overall["latency_mean_s"] > 0 and overall["latency_p95_s"] > 0
    # K = 8 <= 20: reranking a fixed candidate set cannot change recall at 20
    assert overall["reranked"]["R@20"] == pytest.approx(overall["first_stage"]["R@20"])
    assert overall["reranked"]["R@20"] == pytest.approx(overall["candidate_recall"])
    assert "+ " in printed and "ms /" in printed

    turns = {turn.dia_id: turn for turn in load_locomo(locomo_path).conversations[0].turns}
    rows = [json.loads(line) for line in (out / "per_question.jsonl").read_text(encoding="utf-8").splitlines()]
    for row in rows:
        assert sorted(row["reranked"]) == sorted(row["candidates"]) and len(set(row["candidates"])) == 8
        texts = [
            render_document(turns[i].document()["text"], turns[i].document(), template=DEFAULT_TEMPLATE)
            for i in row["candidates"]
        ]
        assert texts[0].startswith(f"[{turns[row['candidates'][0]].date}] ")
        expected = tiny_reranker.score(row["question"], texts)
        assert row["rerank_scores"] == pytest.approx(expected, abs=1e-5)
        order = sorted(range(8), key=lambda i: -row["rerank_scores"][i])
        assert row["reranked"] == [row["candidates"][i] for i in order]


def test_hosted_backend_over_loopback_http_gives_perfect_ranking_from_an_oracle_scorer(tmp_path):
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(SAMPLE), encoding="utf-8")
    data = load_locomo(path)
    secret = "sk-eval-secret-0123456789"
    with RerankServer(scorer=oracle_scorer, api_key=secret) as server:
        reranker = MemReranker(
            backend="hosted", base_url=server.base_url, api_key=secret, document_template=DEFAULT_TEMPLATE
        )
        run = run_locomo(data, reranker, EvalConfig(candidates=5, threshold=0.5), progress=False)
        sent = [request["documents"] for request in server.requests]
    assert len(sent) == 3
    assert "[9 June 2023] Bob: My recital went well yesterday." in sent[0]  # the template reached the scored text
    summary = summarize(run)
    overall = summary.groups[OVERALL]
    assert overall.questions == 2
    for column in ("MAP", "MRR", "NDCG@1", "NDCG@3", "NDCG", "R@3", "R@5", "F1"):
        assert overall.reranked[column] == pytest.approx(1.0), column
    assert summary.groups["category 5 (adversarial)"].reranked["MAP"] == pytest.approx(1.0)
    for outcome in run.outcomes:
        scores = dict(zip(outcome.candidates, outcome.rerank_scores, strict=True))
        assert {dia_id for dia_id, score in scores.items() if score == pytest.approx(0.9)} == set(outcome.relevant)
        assert set(outcome.reranked[: len(outcome.relevant)]) == set(outcome.relevant)
        assert outcome.latency_s > 0


def test_cli_hosted_options_reach_the_backend_and_the_key_never_reaches_the_output(locomo_path, tmp_path):
    secret = "sk-cli-secret-9876543210"
    out = tmp_path / "out"
    with RerankServer(api_key=secret) as server:
        code, printed = run_cli(
            "eval",
            "locomo",
            "--data",
            str(locomo_path),
            "--backend",
            "hosted",
            "--base-url",
            server.base_url,
            "--api-key",
            secret,
            "--api-style",
            "memos",
            "--model",
            "memos-reranker-0.6b",
            "--limit",
            "4",
            "--candidates",
            "10",
            "--out",
            str(out),
            "--no-progress",
        )
        models = {request["model"] for request in server.requests}
    assert code == 0
    assert models == {"memos-reranker-0.6b"}
    assert secret not in printed
    for written in out.iterdir():
        assert secret.encode() not in written.read_bytes(), written.name
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["reranker"]["backend"] == "hosted"
    assert results["groups"][OVERALL]["reranked"]["F1"] is not None
