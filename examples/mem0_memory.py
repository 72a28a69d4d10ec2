"""mem0: ``Memory.search(..., rerank=True)`` reranked by MemReranker, with dates and speakers from mem0's metadata.

Run locally (memories stay on this machine) or against the hosted API; the backend is the only switch:

    MEMRERANKER_BACKEND=local  MEMRERANKER_MODEL=IAAR-Shanghai/MemReranker-0.6B python examples/mem0_memory.py
    MEMRERANKER_BACKEND=hosted MEMOS_API_KEY=... python examples/mem0_memory.py

The vector store is a local Qdrant folder and the embedder a small offline word-hash stand-in, so the example runs
anywhere; swap in your own mem0 embedder and LLM. Memories are added with ``infer=False`` (no LLM extraction).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile

os.environ.setdefault("MEM0_TELEMETRY", "False")  # mem0 reads it on import; keeps this example offline

from mem0 import Memory
from mem0.embeddings.base import EmbeddingBase
from mem0_memreranker import register

QUERY = "When did Caroline go to the LGBTQ support group?"
MEMORIES = [
    (
        "I went to a LGBTQ support group yesterday and it was so powerful.",
        {"date": "8 May 2023", "speaker": "Caroline"},
    ),
    ("I painted a sunrise over the lake last week.", {"date": "8 May 2023", "speaker": "Melanie"}),
    (
        "I'm researching adoption agencies; I want to give a kid a loving home.",
        {"date": "25 May 2023", "speaker": "Caroline"},
    ),
    ("I ran a charity race for mental health on Saturday.", {"date": "25 May 2023", "speaker": "Melanie"}),
    ("It rained all weekend, so we stayed in and played board games.", {"date": "9 June 2023", "speaker": "Melanie"}),
]


class WordHashEmbedding(EmbeddingBase):
    """Offline stand-in for a real embedder: a bag of hashed words."""

    def embed(self, text, memory_action=None):
        vector = [0.0] * 64
        for word in re.findall(r"\w+", text.lower()):
            vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1.0
        return vector


def main() -> None:
    register()  # once: adds the "memreranker" provider to mem0's reranker factory
    with tempfile.TemporaryDirectory() as folder:
        memory = Memory.from_config(
            {
                "vector_store": {
                    "provider": "qdrant",
                    "config": {"path": f"{folder}/qdrant", "embedding_model_dims": 64},
                },
                "embedder": {"provider": "openai", "config": {"api_key": "unused"}},  # replaced below
                "llm": {"provider": "openai", "config": {"api_key": "unused"}},  # not called with infer=False
                "history_db_path": f"{folder}/history.db",
                "reranker": {
                    "provider": "memreranker",
                    "config": {
                        "backend": os.environ.get("MEMRERANKER_BACKEND", "local"),  # "local" or "hosted"
                        "top_k": 3,  # rerank all of mem0's candidates, return the best 3
                    },  # the model reads "8 May 2023\nCaroline\nI went to..." (metadata date and speaker)
                },
            }
        )
        memory.embedding_model = WordHashEmbedding()
        for text, metadata in MEMORIES:
            memory.add(text, user_id="caroline", metadata=metadata, infer=False)

        print(f"Query: {QUERY}")
        # mem0 hands the reranker only its own top_k: ask for more candidates than you keep.
        found = memory.search(QUERY, filters={"user_id": "caroline"}, top_k=5, threshold=0.0, rerank=True)
        for result in found["results"]:
            meta = result["metadata"]
            print(f"  {result['rerank_score']:.4f}  [{meta['date']}] {meta['speaker']}: {result['memory']}")


if __name__ == "__main__":
    main()
