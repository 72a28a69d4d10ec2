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


@pytest.mark.parametrize(
    "template",
    [
        "{text:{date.__class__}}",  # a field nested in a format spec ran an attribute lookup on user data
        "{text:{date}}",
        "{text:>1000000000}",  # a literal spec can still build a huge string
        "[{date.year}] {text}",
        "[{x[0]}] {text}",
        "{text!r}",
        "{text!s:>5}",
        "{} {text}",
        "{0} {text}",
    ],
)
def test_templates_accept_plain_named_fields_only(template):
    with pytest.raises(ConfigurationError, match="plain named fields only"):
        template_fields(template)
    with pytest.raises(ConfigurationError, match="plain named fields only"):
        render_document("hi", {"date": "7 May 2023", "x": ["a"]}, template=template)


def test_plain_templates_render_literally_with_escaped_braces_and_str_of_each_value():
    assert template_fields("{{note}} [{date}] {text} {date}") == ("date", "text")
    meta = {"date": 2023, "speaker": None}
    assert render_document("hi", meta, template="{{note}} [{date}] {speaker}: {text}") == "{note} [2023] None: hi"
    assert render_document("a {date} b", {"date": "d"}, template="{text}") == "a {date} b"  # text is not re-parsed


@pytest.mark.parametrize("bad", ["a\ud800b", "\udfff", "x\udcff"])
def test_lone_surrogates_in_document_text_are_a_typed_error_naming_the_document(bad):
    with pytest.raises(InvalidInputError, match=r"documents\[2\] holds the lone surrogate"):
        split_document(bad, 2)
    with pytest.raises(InvalidInputError, match=r"documents\[1\] holds the lone surrogate"):
        split_document({"text": bad, "date": "d"}, 1)
    with pytest.raises(InvalidInputError, match="lone surrogate"):
        render_document("hi", {"date": bad}, template="[{date}] {text}")
    with pytest.raises(InvalidInputError, match="lone surrogate"):
        render_document("hi", {"date": bad}, metadata_fields=["date"])
    assert split_document("Zoë 😀 \u2028 ok", 0) == ("Zoë 😀 \u2028 ok", {})  # real characters, astral ones too


def test_a_surrogate_document_never_reaches_the_model(tmp_path):
    from memreranker_core import MemReranker

    unloadable = MemReranker(backend="local", model=str(tmp_path), device="cpu")  # loading would raise
    with pytest.raises(InvalidInputError, match=r"documents\[1\] holds the lone surrogate"):
        unloadable.score("q", ["fine", "bad\ud800"])
