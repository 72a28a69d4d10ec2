"""The LoCoMo loader: the real file's counts and repairs, evidence parsing, and typed errors on bad files."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from memreranker_core.errors import InvalidInputError
from memreranker_core.eval.locomo import Turn, load_locomo, parse_evidence


@pytest.mark.parametrize(
    ("entry", "ids"),
    [
        ("D1:3", ("D1:3",)),
        ("D8:6; D9:17", ("D8:6", "D9:17")),
        ("D9:1 D4:4 D4:6", ("D9:1", "D4:4", "D4:6")),
        ("D:11:26", ("D11:26",)),
        ("D08:06", ("D8:6",)),
        ("D", ()),
        ("", ()),
    ],
)
def test_evidence_entries_are_parsed_into_normalized_ids(entry, ids):
    assert parse_evidence(entry) == ids


def _write(tmp_path, data) -> str:
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def _conversation(qa):
    return {
        "sample_id": "conv-x",
        "conversation": {
            "speaker_a": "Alice",
            "speaker_b": "Bob",
            "session_2_date_time": "9 June 2023",
            "session_2": [{"speaker": "Bob", "dia_id": "D2:1", "text": "My recital went well."}],
            "session_1_date_time": "1 May 2023",
            "session_1": [
                {"speaker": "Alice", "dia_id": "D1:1", "text": "I adopted a puppy."},
                {"speaker": "Alice", "dia_id": "D1:2", "text": "Look!", "blip_caption": "a dog on a beach"},
            ],
            "session_3_date_time": "10 June 2023",  # a date with no session, as in the real file
        },
        "qa": qa,
    }


def test_a_hand_built_file_keeps_session_order_dates_captions_and_repairs_evidence(tmp_path):
    qa = [
        {"question": "What did Alice adopt?", "answer": "a puppy", "evidence": ["D1:1"], "category": 4},
        {"question": "What happened?", "answer": "x", "evidence": ["D2:1; D1:1", "D1:1"], "category": 1},
        {"question": "Is Alice kind?", "answer": "yes", "evidence": [], "category": 3},
        {"question": "Who sang?", "adversarial_answer": "Bob", "evidence": ["D7:7"], "category": 5},
    ]
    data = load_locomo(_write(tmp_path, [_conversation(qa)]))
    (conversation,) = data.conversations
    assert [turn.dia_id for turn in conversation.turns] == ["D1:1", "D1:2", "D2:1"]
    assert [turn.date for turn in conversation.turns] == ["1 May 2023", "1 May 2023", "9 June 2023"]
    assert conversation.turns[1].image_caption == "a dog on a beach"
    questions = conversation.questions
    assert [q.qid for q in questions] == ["conv-x/q0", "conv-x/q1", "conv-x/q2", "conv-x/q3"]
    assert questions[1].evidence == ("D2:1", "D1:1")  # split, normalized, deduplicated in file order
    assert questions[1].raw_evidence == ("D2:1; D1:1", "D1:1")
    assert questions[2].evidence == ()
    assert questions[3].evidence == ()  # D7:7 names no turn: dropped, so the question has no usable evidence
    assert questions[3].answer == "Bob"
    assert {(issue.raw, issue.parsed, issue.unknown) for issue in data.evidence_issues} == {
        ("D2:1; D1:1", ("D2:1", "D1:1"), ()),
        ("D7:7", ("D7:7",), ("D7:7",)),
    }
    assert data.num_turns == 3
    assert data.num_questions == 4


def test_turn_documents_carry_date_speaker_and_optional_image_caption():
    turn = Turn("D1:2", 1, "1 May 2023", "Alice", "Look!", "a dog on a beach")
    assert turn.document() == {
        "text": "Look! (shared an image: a dog on a beach)",
        "date": "1 May 2023",
        "speaker": "Alice",
    }
    assert turn.document(image_captions=False)["text"] == "Look!"


def test_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(InvalidInputError, match="snap-research/locomo"):
        load_locomo(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a JSON file"),
        ("{}", "non-empty JSON list"),
        ('[{"qa": []}]', "no 'conversation' field"),
        ('[{"conversation": {}, "qa": [{"question": "q?", "evidence": []}]}]', "no 'category' field"),
        (
            '[{"conversation": {"session_1": [{"speaker": "A", "dia_id": "turn-1", "text": "t"}]}, "qa": []}]',
            "D<session>",
        ),
    ],
)
def test_files_not_shaped_like_locomo_raise_a_typed_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInputError, match=message):
        load_locomo(path)


def test_the_real_locomo_file_loads_with_its_published_counts(locomo_path):
    data = load_locomo(locomo_path)
    assert len(data.conversations) == 10
    assert data.num_turns == 5882
    assert data.num_questions == 1986
    assert Counter(q.category for q in data.questions()) == {4: 841, 5: 446, 2: 321, 1: 282, 3: 96}
    by_text = {q.text: q for q in data.questions()}
    assert by_text["What did Melanie paint recently?"].evidence == ("D8:6", "D9:17")
    assert by_text["What did Melanie paint recently?"].raw_evidence == ("D8:6; D9:17",)
    assert "D11:26" in by_text["What authors has Tim read books from?"].evidence  # written "D:11:26"
    assert by_text["What is one of Joanna's favorite movies?"].evidence == ("D1:18", "D1:20")  # a stray "D"
    assert sum(1 for q in data.questions() if not q.evidence) == 4
    repaired = {issue.raw for issue in data.evidence_issues}
    assert {"D8:6; D9:17", "D", "D:11:26", "D9:1 D4:4 D4:6"} <= repaired
    unknown = {(issue.qid.split("/")[0], issue.raw) for issue in data.evidence_issues if issue.unknown}
    assert unknown == {("conv-42", "D10:19"), ("conv-47", "D4:36")}  # ids naming no turn of their conversation
    for conversation in data.conversations:
        ids = {turn.dia_id for turn in conversation.turns}
        assert all(set(q.evidence) <= ids for q in conversation.questions)
