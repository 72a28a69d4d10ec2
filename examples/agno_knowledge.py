"""Agno: ``Knowledge.search`` over a vector store, reranked by MemReranker, with dates and speakers from metadata.

Run locally (memories stay on this machine) or against the hosted API; the backend is the only switch:

    MEMRERANKER_BACKEND=local  MEMRERANKER_MODEL=IAAR-Shanghai/MemReranker-0.6B python examples/agno_knowledge.py
    MEMRERANKER_BACKEND=hosted MEMOS_API_KEY=... python examples/agno_knowledge.py

The vector store is Qdrant in memory (qdrant-client's local mode, no server) and the embedder a small offline
word-hash stand-in, so the example runs anywhere; swap in your own. An agent uses the same ``Knowledge``:
``Agent(model=..., knowledge=knowledge, search_knowledge=True)`` searches it, reranked, as a tool.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from dataclasses import dataclass

from agno.knowledge.embedder.base import Embedder
from agno.knowledge.knowledge import Knowledge
from agno.vectordb.qdrant import Qdrant
from agno_memreranker import MemRerankerAgno

QUERY = "When did Caroline go to the LGBTQ support group?"
MEMORIES = [
    ("D1:3", "I went to a LGBTQ support group yesterday and it was so powerful.", "8 May 2023", "Caroline"),
    ("D1:5", "I painted a sunrise over the lake last week.", "8 May 2023", "Melanie"),
    ("D2:1", "I'm researching adoption agencies; I want to give a kid a loving home.", "25 May 2023", "Caroline"),
    ("D2:4", "I ran a charity race for mental health on Saturday.", "25 May 2023", "Melanie"),
    ("D3:2", "It rained all weekend, so we stayed in and played board games.", "9 June 2023", "Melanie"),
]


@dataclass
class WordHashEmbedder(Embedder):
    """Offline stand-in for a real embedder: a bag of hashed words."""

    dimensions: int = 64

    def get_embedding(self, text: str) -> list[float]:
        vector = [0.0] * 64
        for word in re.findall(r"\w+", text.lower()):
            vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1.0
        return vector

    def get_embedding_and_usage(self, text: str) -> tuple[list[float], None]:
        return self.get_embedding(text), None


def main() -> None:
    warnings.filterwarnings("ignore", message="Payload indexes have no effect")  # Qdrant's local mode says so
    reranker = MemRerankerAgno(
        backend=os.environ.get("MEMRERANKER_BACKEND", "local"),  # "local" or "hosted": the one switch
        metadata_fields=["date", "speaker"],  # the model reads "8 May 2023\nCaroline\nI went to..."
    )  # Knowledge fetches max_results x candidate_multiplier (3) candidates, at most max_candidates (100)
    knowledge = Knowledge(
        vector_db=Qdrant(collection="memories", location=":memory:", embedder=WordHashEmbedder()),
        reranker=reranker,
        max_results=3,
    )
    for name, text, date, speaker in MEMORIES:
        knowledge.insert(name=name, text_content=text, metadata={"date": date, "speaker": speaker})

    print(f"Query: {QUERY}")
    for document in knowledge.search(QUERY):  # 9 candidates asked for (all 5 here), the best 3 kept
        meta = document.meta_data
        print(f"  {document.reranking_score:.4f}  [{meta['date']}] {meta['speaker']}: {document.content}")


if __name__ == "__main__":
    main()
