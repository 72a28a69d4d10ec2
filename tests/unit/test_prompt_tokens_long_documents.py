"""A long document is tokenized by a head, not whole, and its ids are exactly those of the whole text's
tokenization: the first ``room`` ids (and the truncation) of today's full tokenization, for texts that fit and
texts far over ``max_length``, in every script and whitespace shape; a tokenizer that is not Qwen's, or a text
with no safe cut, is tokenized whole."""

from __future__ import annotations

import random

import pytest

from memreranker_core import prompt_tokens
from memreranker_core.prompt import DEFAULT_INSTRUCTION, document_part
from memreranker_core.prompt_tokens import PromptEncoder, safe_cut
from memreranker_core.types import ScoreRequest

#: Pieces that stress the tokenizer's normalizer and split pattern at a cut.
PIECES = [
    "Caroline",
    "went",
    "to",
    "the",
    "LGBTQ",
    "support",
    "group",
    "yesterday",
    "it's",
    "THEY'LL",
    "we'Re",
    "don't",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n",
    " \n ",
    "\r\n",
    "\u00a0",
    "\u3000",
    "\u2028",
    "\x0b",
    "\x1c",
    ",",
    ".",
    "!",
    "?",
    ";",
    ":",
    "...",
    "?!",
    "--",
    "(",
    ")",
    '"',
    "'",
    "_",
    "-",
    "/",
    "<",
    ">",
    "&",
    "$",
    "%",
    "，",
    "。",
    "、",
    "！",
    "？",
    "；",
    "：",
    "“",
    "”",
    "我",
    "们",
    "昨天",
    "去了",
    "支持",
    "小组",
    "東京",
    "한국어",
    "ᄀ",
    "ᅡ",
    "ᆨ",
    "가",
    "ไทย",
    "Ελλάδα",
    "Россия",
    "עברית",
    "e\u0301",
    "\u0301",
    "a\u0308\u0301",
    "Å",
    "\u212b",
    "ﬁ",
    "①",
    "½",
    "0",
    "1",
    "42",
    "2023",
    "3.14",
    "٣",
    "😀",
    "👩\u200d💻",
    "\U0001f1ef\U0001f1f5",
    "\ufe0f",
    "\u200b",
    "\u200d",
    "\x00",
    "<think>",
    "</think>",
    "<|im_end|>",
    "<tool_call>",
]


def random_text(rng: random.Random, pieces: int) -> str:
    return "".join(rng.choice(PIECES) + (" " if rng.random() < 0.4 else "") for _ in range(pieces))


@pytest.fixture(scope="module")
def encoder(tiny_model_path):
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer

    return PromptEncoder(Tokenizer.from_file(str(tiny_model_path / "tokenizer.json")))


def full_ids(encoder: PromptEncoder, text: str) -> list[int]:
    """Today's tokenization: the whole document, as the prompt holds it."""
    return encoder.encode_literal([document_part(text)])[0]


def test_a_head_ending_at_a_safe_cut_has_exactly_the_first_ids_of_the_whole_text(encoder):
    rng = random.Random(2205)
    checked = 0
    for _ in range(60):
        text = document_part(random_text(rng, 400))
        whole = encoder.encode_literal([text])[0]
        for end in range(8, len(text), 37):
            cut = safe_cut(text, end)
            if cut is None:
                continue
            head = encoder.encode_literal([text[:cut]])[0]
            assert head == whole[: len(head)], (text[max(0, cut - 12) : cut + 12], cut)
            checked += 1
    assert checked > 1000


@pytest.mark.parametrize("max_length", [90, 111, 160, 400])
def test_prepared_ids_equal_todays_full_tokenization_for_texts_that_fit_and_long_ones(encoder, max_length):
    rng = random.Random(max_length)
    documents = tuple(random_text(rng, rng.choice([3, 20, 60, 200, 600, 2000])) for _ in range(40))
    documents += ("short", "x" * 5000, "我" * 3000, " " * 3000 + "end", "word. " * 2000, "line\n" * 2000)
    request = ScoreRequest("When did Caroline go?", documents, instruction=DEFAULT_INSTRUCTION)
    prepared = encoder.prepare(request, default_instruction=DEFAULT_INSTRUCTION, max_length=max_length)
    room = max_length - len(prepared.shared) - len(encoder.suffix_ids)
    suffix = list(encoder.suffix_ids)
    expected_truncated = []
    for position, text in enumerate(documents):
        whole = full_ids(encoder, text)
        assert prepared.sequences[position] == whole[:room] + suffix, position
        if len(whole) > room:
            expected_truncated.append(position)
    assert prepared.truncated == tuple(expected_truncated)


def test_a_long_document_is_tokenized_by_a_bounded_head(encoder, monkeypatch):
    seen: list[int] = []
    encode = encoder.encode_literal

    def recording(texts):
        seen.extend(len(text) for text in texts)
        return encode(texts)

    monkeypatch.setattr(encoder, "encode_literal", recording)
    huge = "Caroline went to the support group on 7 May 2023, and she liked it. " * 30_000  # 2 MB
    prepared = encoder.prepare(ScoreRequest("q", (huge,)), default_instruction=DEFAULT_INSTRUCTION, max_length=512)
    assert prepared.truncated == (0,)
    assert max(seen) <= 2 * prompt_tokens.HEAD_CHARS_PER_TOKEN * 512 + 64
    monkeypatch.undo()
    assert (
        prepared.sequences[0][: -len(encoder.suffix_ids)]
        == full_ids(encoder, huge)[: len(prepared.sequences[0]) - len(encoder.suffix_ids)]
    )


def test_a_text_with_no_safe_cut_is_tokenized_whole_with_the_same_ids(encoder):
    text = "ab" * 20_000  # one letter run: no place to cut
    prepared = encoder.prepare(ScoreRequest("q", (text,)), default_instruction=DEFAULT_INSTRUCTION, max_length=128)
    room = 128 - len(prepared.shared) - len(encoder.suffix_ids)
    assert prepared.sequences[0] == full_ids(encoder, text)[:room] + list(encoder.suffix_ids)
    assert prepared.truncated == (0,)


def test_a_tokenizer_that_is_not_qwens_is_never_cut(tiny_model_path):
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer, normalizers

    tokenizer = Tokenizer.from_file(str(tiny_model_path / "tokenizer.json"))
    tokenizer.normalizer = normalizers.NFKC()
    assert PromptEncoder(tokenizer).cuts_heads is False


def test_the_encoder_has_no_unused_added_token_ids(encoder):
    assert not hasattr(encoder, "added_token_ids")
