"""Haystack: a BM25 retriever followed by MemReranker in a Pipeline, which also round-trips through YAML.

Run locally (memories stay on this machine) or against the hosted API; the backend is the only switch:

    MEMRERANKER_BACKEND=local  MEMRERANKER_MODEL=IAAR-Shanghai/MemReranker-0.6B python examples/haystack_pipeline.py
    MEMRERANKER_BACKEND=hosted MEMOS_API_KEY=... python examples/haystack_pipeline.py

The API key stays in the environment: the pipeline's YAML holds only a reference to ``MEMOS_API_KEY``.
"""

from __future__ import annotations

import os

from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack_integrations.components.rankers.memreranker import MemRerankerRanker

QUERY = "When did Caroline go to the LGBTQ support group?"
MEMORIES = [
    Document(
        id="D1:3",
        content="I went to a LGBTQ support group yesterday and it was so powerful.",
        meta={"date": "8 May 2023", "speaker": "Caroline"},
    ),
    Document(
        id="D1:5",
        content="I painted a sunrise over the lake last week.",
        meta={"date": "8 May 2023", "speaker": "Melanie"},
    ),
    Document(
        id="D2:1",
        content="I'm researching adoption agencies; I want to give a kid a loving home.",
        meta={"date": "25 May 2023", "speaker": "Caroline"},
    ),
    Document(
        id="D2:4",
        content="I ran a charity race for mental health on Saturday.",
        meta={"date": "25 May 2023", "speaker": "Melanie"},
    ),
    Document(
        id="D3:2",
        content="It rained all weekend, so we stayed in and played board games.",
        meta={"date": "9 June 2023", "speaker": "Melanie"},
    ),
]


def main() -> None:
    store = InMemoryDocumentStore(index="memreranker-example")
    store.write_documents(MEMORIES)
    pipeline = Pipeline()
    pipeline.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=5))
    pipeline.add_component(
        "ranker",
        MemRerankerRanker(
            backend=os.environ.get("MEMRERANKER_BACKEND", "local"),  # "local" or "hosted": the one switch
            top_k=3,
            meta_fields_to_embed=["date", "speaker"],  # the model reads "8 May 2023\nCaroline\nI went to..."
        ),
    )
    pipeline.connect("retriever.documents", "ranker.documents")

    yaml_text = pipeline.dumps()
    print("Pipeline YAML holds the key as an env-var reference only:", "MEMOS_API_KEY" in yaml_text)
    pipeline = Pipeline.loads(yaml_text)  # what a deployment would load

    result = pipeline.run({"retriever": {"query": QUERY}, "ranker": {"query": QUERY}})
    print(f"Query: {QUERY}")
    for document in result["ranker"]["documents"]:
        meta = document.meta
        print(f"  {document.score:.4f}  [{meta['date']}] {meta['speaker']}: {document.content}")


if __name__ == "__main__":
    main()
