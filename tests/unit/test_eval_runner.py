"""The BM25 first stage and the runner on a hand-built conversation: candidates, skips, groups, limits, errors."""

from __future__ import annotations

import json

import pytest

from memreranker_core.errors import ConfigurationError, InvalidInputError
from memreranker_core.eval.first_stage import BM25FirstStage, create_first_stage
from memreranker_core.eval.locomo import load_locomo
from memreranker_core.eval.runner import OVERALL, EvalConfig, run_locomo, summarize

pytest.importorskip("bm25s")
pytest.importorskip("ranx")

SAMPLE = [
    {
        "sample_id": "conv-a",
        "conversation": {
            "speaker_a": "Alice",
            "speaker_b": "Bob",
            "session_1_date_time": "1 May 2023",
            "session_1": [
                {"speaker": "Alice", "dia_id": "D1:1", "text": "I adopted a puppy named Biscuit."},
                {"speaker": "Bob", "dia_id": "D1:2", "text": "Congrats! I started learning the violin."},
                {"speaker": "Alice", "dia_id": "D1:3", "text": "Look at this!", "blip_caption": "a dog on the sand"},
            ],
            "session_2_date_time": "9 June 2023",
            "session_2": [
                {"speaker": "Bob", "dia_id": "D2:1", "text": "My violin recital went well yesterday."},
                {"speaker": "Alice", "dia_id": "D2:2", "text": "I moved to Denver for a new job."},
            ],
        },
        "qa": [
            {"question": "What is the name of the puppy Alice adopted?", "evidence": ["D1:1"], "category": 4},
            {"question": "When was the violin recital?", "evidence": ["D2:1"], "category": 2},
            {"question": "What did the dog sit on, the sand?", "evidence": ["D1:3; D1:1"], "category": 1},
            {"question": "Is Alice an ally?", "evidence": [], "category": 3},
            {"question": "Which city did Alice move to, Denver?", "evidence": ["D2:2"], "category": 5},
            {"question": "What instrument?", "evidence": ["D9:9"], "category": 4},
        ],
    }
]


@pytest.fixture
def sample(tmp_path):
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(SAMPLE), encoding="utf-8")
    return load_locomo(path)


def test_bm25_ranks_matching_turns_first_and_breaks_ties_by_position():
    index = BM25FirstStage().index(["the cat sat", "a violin recital", "violin lessons", "nothing here"])
    ranked = index.rank("violin recital", k=3)
    assert [position for position, _ in ranked] == [1, 2, 0]
    assert ranked[0][1] > ranked[1][1] > 0.0 == ranked[2][1]
    assert [position for position, _ in index.rank("zebra", k=10)] == [0, 1, 2, 3]  # no match: turn order, all
    assert [position for position, _ in index.rank("the of and", k=2)] == [0, 1]  # only stop words


def test_an_unknown_first_stage_is_refused_with_the_available_names():
    with pytest.raises(ConfigurationError, match="available: bm25, dense, hybrid"):
        create_first_stage("splade")
    with pytest.raises(ConfigurationError, match="available: bm25, dense, hybrid"):
        EvalConfig(first_stage="splade")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"candidates": 0}, InvalidInputError),
        ({"limit": 0}, InvalidInputError),
        ({"threshold": 1.5}, InvalidInputError),
        ({"document_template": "{speaker} said"}, ConfigurationError),
    ],
)
def test_bad_settings_are_refused_before_any_work(kwargs, error):
    with pytest.raises(error):
        EvalConfig(**kwargs)


def test_first_stage_run_skips_and_counts_questions_without_evidence(sample):
    run = run_locomo(sample, None, EvalConfig(), progress=False)
    assert [outcome.qid for outcome in run.outcomes] == ["conv-a/q0", "conv-a/q1", "conv-a/q2", "conv-a/q4"]
    assert run.skipped_no_evidence == ("conv-a/q3", "conv-a/q5")
    assert (run.num_turns, run.num_questions) == (5, 6)
    for outcome in run.outcomes:
        assert sorted(outcome.candidates) == ["D1:1", "D1:2", "D1:3", "D2:1", "D2:2"]  # K=50 > 5 turns: all, once
        assert outcome.reranked is None and outcome.latency_s is None
        assert list(outcome.first_stage_scores) == sorted(outcome.first_stage_scores, reverse=True)


def test_candidates_are_indexed_with_date_speaker_and_image_caption(sample):
    by_qid = {outcome.qid: outcome for outcome in run_locomo(sample, None, EvalConfig(), progress=False).outcomes}
    assert by_qid["conv-a/q0"].candidates[0] == "D1:1"
    assert by_qid["conv-a/q1"].candidates[0] == "D2:1"
    assert by_qid["conv-a/q2"].candidates[0] == "D1:3"  # only its image caption mentions the dog and the sand
    assert by_qid["conv-a/q4"].candidates[0] == "D2:2"
    no_captions = run_locomo(sample, None, EvalConfig(image_captions=False), progress=False)
    assert no_captions.outcomes[2].candidates[0] != "D1:3"
    by_date = run_locomo(sample, None, EvalConfig(limit=1), progress=False)
    assert by_date.outcomes[0].candidates[0] == "D1:1"


def test_summary_puts_categories_1_to_4_in_overall_and_category_5_apart(sample):
    summary = summarize(run_locomo(sample, None, EvalConfig(), progress=False))
    assert list(summary.groups) == [
        OVERALL,
        "category 1 (multi-hop)",
        "category 2 (temporal)",
        "category 4 (single-hop)",
        "category 5 (adversarial)",
    ]
    overall = summary.groups[OVERALL]
    assert overall.questions == 3
    assert overall.reranked is None and overall.latency_mean_s is None
    assert "F1" not in overall.first_stage
    # every evaluated question has an evidence turn ranked first by BM25 (see the test above)
    assert overall.first_stage["MRR"] == pytest.approx(1.0)
    assert overall.first_stage["NDCG@1"] == pytest.approx(1.0)
    assert overall.first_stage["R@5"] == pytest.approx(1.0)
    assert overall.candidate_recall == pytest.approx(1.0)
    assert summary.groups["category 5 (adversarial)"].questions == 1


def test_limit_counts_evaluated_questions_in_file_order(sample):
    run = run_locomo(sample, None, EvalConfig(limit=4), progress=False)
    assert [outcome.qid for outcome in run.outcomes] == ["conv-a/q0", "conv-a/q1", "conv-a/q2", "conv-a/q4"]
    assert run.skipped_no_evidence == ("conv-a/q3",)
    assert len(run_locomo(sample, None, EvalConfig(limit=2), progress=False).outcomes) == 2


def test_fewer_candidates_than_turns_keeps_the_first_stage_top_k(sample):
    run = run_locomo(sample, None, EvalConfig(candidates=2), progress=False)
    assert all(len(outcome.candidates) == 2 for outcome in run.outcomes)
    summary = summarize(run)
    # q2's second evidence turn (D1:1) may fall outside the top 2: the ceiling is what the candidates hold
    assert summary.groups[OVERALL].candidate_recall <= 1.0
    assert summary.groups[OVERALL].first_stage["R@20"] == pytest.approx(summary.groups[OVERALL].candidate_recall)


def test_a_reranker_with_another_document_template_is_refused(sample):
    from memreranker_core import MemReranker

    reranker = MemReranker(backend="local", model="unused/model")  # construction loads nothing
    with pytest.raises(InvalidInputError, match="document_template"):
        run_locomo(sample, reranker, EvalConfig(), progress=False)
