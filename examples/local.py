"""Rerank a user's memories on this machine: the local backend, so private memories never leave it.

Run (a local checkpoint folder or a hub id; the model loads on first use):

    MEMRERANKER_MODEL=IAAR-Shanghai/MemReranker-0.6B python examples/local.py

Set ``MEMRERANKER_DEVICE=cpu`` to force the CPU (default: CUDA when available).
"""

from __future__ import annotations

import os

from memreranker_core import MemReranker

QUERY = "When did Caroline go to the LGBTQ support group?"
MEMORIES = [
    {
        "text": "I went to a LGBTQ support group yesterday and it was so powerful.",
        "date": "8 May 2023",
        "speaker": "Caroline",
    },
    {"text": "I painted a sunrise over the lake last week.", "date": "8 May 2023", "speaker": "Melanie"},
    {
        "text": "I'm researching adoption agencies; I want to give a kid a loving home.",
        "date": "25 May 2023",
        "speaker": "Caroline",
    },
    {"text": "I ran a charity race for mental health on Saturday.", "date": "25 May 2023", "speaker": "Melanie"},
    {
        "text": "It rained all weekend, so we stayed in and played board games.",
        "date": "9 June 2023",
        "speaker": "Melanie",
    },
]


def main() -> None:
    reranker = MemReranker(
        backend="local",
        model=os.environ.get("MEMRERANKER_MODEL"),  # None: IAAR-Shanghai/MemReranker-4B
        device=os.environ.get("MEMRERANKER_DEVICE"),
        # Dates and speakers matter for memory: put them into the text the model reads.
        document_template="[{date}] {speaker}: {text}",
    )
    print(f"Query: {QUERY}  ({reranker!r})")
    for result in reranker.rerank(QUERY, MEMORIES, top_n=3):
        memory = MEMORIES[result.index]
        print(f"  {result.score:.4f}  [{memory['date']}] {memory['speaker']}: {result.document}")


if __name__ == "__main__":
    main()
