"""LlamaIndex: a vector index queried through a query engine whose retrieved nodes MemReranker reranks.

Run locally (memories stay on this machine) or against the hosted API; the backend is the only switch:

    MEMRERANKER_MODEL=IAAR-Shanghai/MemReranker-0.6B python examples/llamaindex_query_engine.py   # local
    MEMRERANKER_BACKEND=hosted MEMOS_API_KEY=... python examples/llamaindex_query_engine.py

The embedding model and the LLM are LlamaIndex's offline mocks so the example runs anywhere; swap in real ones.
"""

from __future__ import annotations

import os

from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, TextNode
from llama_index.postprocessor.memreranker import MemRerankerPostprocessor

QUERY = "When did Caroline go to the LGBTQ support group?"
MEMORIES = [
    TextNode(
        id_="D1:3",
        text="I went to a LGBTQ support group yesterday and it was so powerful.",
        metadata={"date": "8 May 2023", "speaker": "Caroline"},
    ),
    TextNode(
        id_="D1:5",
        text="I painted a sunrise over the lake last week.",
        metadata={"date": "8 May 2023", "speaker": "Melanie"},
    ),
    TextNode(
        id_="D2:1",
        text="I'm researching adoption agencies; I want to give a kid a loving home.",
        metadata={"date": "25 May 2023", "speaker": "Caroline"},
    ),
    TextNode(
        id_="D2:4",
        text="I ran a charity race for mental health on Saturday.",
        metadata={"date": "25 May 2023", "speaker": "Melanie"},
    ),
    TextNode(
        id_="D3:2",
        text="It rained all weekend, so we stayed in and played board games.",
        metadata={"date": "9 June 2023", "speaker": "Melanie"},
    ),
]


def main() -> None:
    index = VectorStoreIndex(MEMORIES, embed_model=MockEmbedding(embed_dim=64))
    postprocessor = MemRerankerPostprocessor(
        backend=os.environ.get("MEMRERANKER_BACKEND", "local"),  # "local" or "hosted": the one switch
        top_n=3,
        metadata_mode=MetadataMode.NONE,
        document_template="[{date}] {speaker}: {text}",  # the model reads "[8 May 2023] Caroline: I went to..."
    )
    engine = RetrieverQueryEngine.from_args(
        index.as_retriever(similarity_top_k=5), llm=MockLLM(), node_postprocessors=[postprocessor]
    )

    response = engine.query(QUERY)
    print(f"Query: {QUERY}")
    for node in response.source_nodes:
        meta = node.node.metadata
        print(f"  {node.score:.4f}  [{meta['date']}] {meta['speaker']}: {node.node.get_content()}")
    print(f"Answer (MockLLM): {str(response)[:60]!r}")


if __name__ == "__main__":
    main()
