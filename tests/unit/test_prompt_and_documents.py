"""The prompt text and document rendering, pinned character for character."""

from __future__ import annotations

import pytest

from memreranker_core import prompt
from memreranker_core.documents import render_document, split_document, template_fields
from memreranker_core.errors import ConfigurationError, InvalidInputError


def test_pair_text_is_the_card_format_instruction():
    assert prompt.format_pair("Q?", "D.", "Do it") == "<Instruct>: Do it\n<Query>: Q?\n<Document>: D."


def test_prefix_and_suffix_are_the_card_strings():
    assert prompt.SYSTEM_PREFIX.startswith("<|im_start|>system\nJudge whether the Document meets")
    assert prompt.SYSTEM_PREFIX.endswith('"yes" or "no".<|im_end|>\n<|im_start|>user\n')
    assert prompt.SUFFIX == "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    assert prompt.DEFAULT_INSTRUCTION == ("Given a web search query, retrieve relevant passages that answer the query")


def test_context_goes_before_the_query_inside_the_query_field():
    field = prompt.query_field("When?", ["A: hi", "B: hello"])
    assert field == "Context:\nA: hi\nB: hello\nQuery: When?"
    assert prompt.query_field("When?", ()) == "When?"


def test_hosted_query_text_folds_only_a_non_default_instruction():
    assert prompt.hosted_query_text("When?", prompt.DEFAULT_INSTRUCTION) == "When?"
    assert prompt.hosted_query_text("When?", "Find memories", ["A: hi"]) == (
        "Instruct: Find memories\nContext:\nA: hi\nQuery: When?"
    )


def test_context_turn_mappings_render_role_colon_content():
    assert prompt.render_context_turn({"role": "user", "content": "hi"}) == "user: hi"
    assert prompt.render_context_turn({"speaker": "Jon", "text": "yo"}) == "Jon: yo"
    assert prompt.render_context_turn({"content": "no speaker"}) == "no speaker"
    with pytest.raises(TypeError):
        prompt.render_context_turn({"role": "user"})


def test_template_fields_are_checked():
    assert template_fields("[{date}] {speaker}: {text}") == ("date", "speaker", "text")
    with pytest.raises(ConfigurationError, match="not a valid format string"):
        template_fields("{text")


def test_render_document_with_template_and_metadata_fields():
    meta = {"date": "7 May 2023", "speaker": "Caroline", "empty": ""}
    assert render_document("hi", meta, template="[{date}] {speaker}: {text}") == "[7 May 2023] Caroline: hi"
    assert render_document("hi", meta, metadata_fields=["date", "missing", "empty", "speaker"]) == (
        "7 May 2023\nCaroline\nhi"
    )
    assert render_document("hi", meta, metadata_fields=["speaker"], separator=" | ") == "Caroline | hi"
    assert render_document("hi") == "hi"


def test_split_document_accepts_text_mappings_and_rejects_the_rest():
    assert split_document("hi", 0) == ("hi", {})
    assert split_document({"text": "hi", "date": "d"}, 0) == ("hi", {"date": "d"})
    with pytest.raises(InvalidInputError, match=r"documents\[3\] is a mapping without a string 'text'"):
        split_document({"content": "hi"}, 3)
    with pytest.raises(InvalidInputError, match=r"documents\[0\] is bytes"):
        split_document(b"hi", 0)
