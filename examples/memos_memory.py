"""MemOS: MemReranker as the reranker of a tree text memory, reading each memory with its ``memory_time``.

Run locally (memories stay on this machine) or against the hosted API; the backend is the only switch:

    MEMRERANKER_BACKEND=local  MEMRERANKER_MODEL=IAAR-Shanghai/MemReranker-0.6B python examples/memos_memory.py
    MEMRERANKER_BACKEND=hosted MEMOS_API_KEY=... python examples/memos_memory.py

Needs MemOS (``pip install MemoryOS``; it pins openai<2 and transformers<5, so give it its own environment). In an
application, install the reranker on the tree memory (its searcher reads the attribute on every search)::

    tree_memory.reranker = MemRerankerMemOS(backend="local")

This example, which needs no graph database, calls the reranker the way MemOS's searcher does.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("MEMOS_BASE_PATH", tempfile.gettempdir())  # MemOS writes its logs to $MEMOS_BASE_PATH/.memos

from memos.memories.textual.item import TextualMemoryItem, TreeNodeTextualMemoryMetadata
from memos_memreranker import MemRerankerMemOS

from memreranker_core.adapter_support import memory_date

QUERY = "When did Caroline go to the LGBTQ support group?"
#: (text, speaker, memory_time)
MEMORIES = [
    ("I went to a LGBTQ support group yesterday and it was so powerful.", "Caroline", "2023-05-08"),
    ("I painted a sunrise over the lake last week.", "Melanie", "2023-05-08"),
    ("I'm researching adoption agencies; I want to give a kid a loving home.", "Caroline", "2023-05-25"),
    ("I ran a charity race for mental health on Saturday.", "Melanie", "2023-05-25"),
    ("It rained all weekend, so we stayed in and played board games.", "Melanie", "2023-06-09"),
]


def main() -> None:
    items = [
        TextualMemoryItem(memory=text, metadata=TreeNodeTextualMemoryMetadata(memory_time=when, speaker=speaker))
        for text, speaker, when in MEMORIES
    ]
    reranker = MemRerankerMemOS(
        backend=os.environ.get("MEMRERANKER_BACKEND", "local"),  # "local" or "hosted": the one switch
        document_template="[{date}] {speaker}: {text}",  # date from memory_time, speaker from the metadata
        metadata_fields=[],
    )
    print(f"Query: {QUERY}")
    for item, score in reranker.rerank(QUERY, items, top_k=3):  # what MemOS's Searcher calls
        meta = item.metadata
        print(f"  {score:.4f}  [{memory_date(meta.memory_time)}] {meta.speaker}: {item.memory}")


if __name__ == "__main__":
    main()
