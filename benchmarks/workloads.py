"""The benchmark workloads W1-W5: one query and its documents each, built deterministically.

W1  a LoCoMo question with 50 candidate turns (date and speaker included), from ../shared/data/locomo10.json
W2  100 documents of about 200 tokens
W3  20 documents of about 2,000 tokens
W4  one pair (latency)
W5  10,000 short memories for one query (memory must stay bounded by the token budget)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCOMO_PATH = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "locomo10.json"

PEOPLE = ["Caroline", "Melanie", "Jon", "Gina", "Maria", "John", "Nate", "Joanna", "Tim", "Audrey"]
PLACES = ["the lake", "a pottery studio", "the support group", "the beach", "Boston", "the library", "a cafe"]
ACTS = [
    "painted a sunrise over",
    "talked for hours about",
    "went to",
    "wrote a long letter from",
    "took photos at",
    "signed up for a class near",
    "ran a charity race around",
]
MONTHS = ["January", "March", "May", "June", "August", "October", "December"]


@dataclass(frozen=True)
class Workload:
    """One benchmark case: a query, its documents, and what the case measures."""

    name: str
    description: str
    query: str
    documents: tuple[str, ...]


def _sentence(rng: random.Random) -> str:
    return (
        f"On {rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(2019, 2024)}, {rng.choice(PEOPLE)} "
        f"{rng.choice(ACTS)} {rng.choice(PLACES)} with {rng.choice(PEOPLE)}."
    )


def text_of_tokens(tokenizer: Any, target: int, rng: random.Random) -> str:
    """A memory-like text of about ``target`` tokens (whole sentences, at most one sentence over)."""
    sentences: list[str] = []
    count = 0
    while count < target:
        sentence = _sentence(rng)
        sentences.append(sentence)
        count += len(tokenizer(" " + sentence, add_special_tokens=False)["input_ids"])
    return " ".join(sentences)


def locomo_workload(path: Path = LOCOMO_PATH, count: int = 50) -> Workload | None:
    """W1: the first question of conversation 0 and ``count`` turns, evidence included; None without the file."""
    if not path.is_file():
        return None
    sample = json.loads(path.read_text(encoding="utf-8"))[0]
    conversation, qa = sample["conversation"], sample["qa"][0]
    turns: list[tuple[str, str]] = []
    session = 1
    while f"session_{session}" in conversation:
        date = conversation.get(f"session_{session}_date_time", "")
        for turn in conversation[f"session_{session}"]:
            turns.append((turn.get("dia_id", ""), f"[{date}] {turn['speaker']}: {turn['text']}"))
        session += 1
    evidence = [text for dia_id, text in turns if dia_id in set(qa.get("evidence", []))]
    others = [text for dia_id, text in turns if dia_id not in set(qa.get("evidence", []))]
    chosen = evidence + random.Random(0).sample(others, count - len(evidence))
    random.Random(1).shuffle(chosen)
    return Workload("W1", f"LoCoMo question, {count} candidate turns", qa["question"], tuple(chosen))


def build_workloads(
    tokenizer: Any, *, w5_docs: int = 10_000, scale: float = 1.0, skip: frozenset[str] = frozenset()
) -> list[Workload]:
    """W1-W5 (W1 only when LoCoMo is present; names in ``skip`` are left out).

    ``scale`` shrinks the document counts of W2 and W3 for slow CPU runs (the reports say so).
    """
    w2_docs, w3_docs = max(1, round(100 * scale)), max(1, round(20 * scale))
    rng = random.Random(1234)
    query = "When did Caroline go to the lake with Melanie, and what did she paint there?"
    workloads: list[Workload] = []
    w1 = None if "W1" in skip else locomo_workload()
    if w1 is not None:
        workloads.append(w1)
    if "W2" not in skip:
        docs = tuple(text_of_tokens(tokenizer, 200, rng) for _ in range(w2_docs))
        workloads.append(Workload("W2", f"{w2_docs} documents of ~200 tokens", query, docs))
    if "W3" not in skip:
        docs = tuple(text_of_tokens(tokenizer, 2000, rng) for _ in range(w3_docs))
        workloads.append(Workload("W3", f"{w3_docs} documents of ~2,000 tokens", query, docs))
    if "W4" not in skip:
        workloads.append(Workload("W4", "one pair (latency)", query, (text_of_tokens(tokenizer, 40, rng),)))
    if "W5" not in skip:
        docs = tuple(_sentence(rng) for _ in range(w5_docs))
        workloads.append(Workload("W5", f"{w5_docs:,} short memories", query, docs))
    return workloads
