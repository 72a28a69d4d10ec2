"""LangChain: a vector-store retriever, reranked by MemReranker, feeding an LCEL RAG chain.

Run locally (memories stay on this machine) or against the hosted API; the backend is the only switch:

    MEMRERANKER_BACKEND=local  MEMRERANKER_MODEL=IAAR-Shanghai/MemReranker-0.6B python examples/langchain_rag.py
    MEMRERANKER_BACKEND=hosted MEMOS_API_KEY=... python examples/langchain_rag.py

The embedding model and the LLM are LangChain's offline fakes so the example runs anywhere; swap in real ones.
"""

from __future__ import annotations

import os

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import FakeListLLM
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_memreranker import MemRerankerCompressor

QUERY = "When did Caroline go to the LGBTQ support group?"
MEMORIES = [
    Document(
        "I went to a LGBTQ support group yesterday and it was so powerful.",
        id="D1:3",
        metadata={"date": "8 May 2023", "speaker": "Caroline"},
    ),
    Document(
        "I painted a sunrise over the lake last week.", id="D1:5", metadata={"date": "8 May 2023", "speaker": "Melanie"}
    ),
    Document(
        "I'm researching adoption agencies; I want to give a kid a loving home.",
        id="D2:1",
        metadata={"date": "25 May 2023", "speaker": "Caroline"},
    ),
    Document(
        "I ran a charity race for mental health on Saturday.",
        id="D2:4",
        metadata={"date": "25 May 2023", "speaker": "Melanie"},
    ),
    Document(
        "It rained all weekend, so we stayed in and played board games.",
        id="D3:2",
        metadata={"date": "9 June 2023", "speaker": "Melanie"},
    ),
]


def main() -> None:
    store = InMemoryVectorStore(embedding=DeterministicFakeEmbedding(size=64))
    store.add_documents(MEMORIES)
    compressor = MemRerankerCompressor(
        backend=os.environ.get("MEMRERANKER_BACKEND", "local"),  # "local" or "hosted": the one switch
        top_n=3,
        metadata_fields=["date", "speaker"],  # the model reads "8 May 2023\nCaroline\nI went to..."
    )
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=store.as_retriever(search_kwargs={"k": 5})
    )

    print(f"Query: {QUERY}")
    for document in retriever.invoke(QUERY):
        meta = document.metadata
        print(f"  {meta['relevance_score']:.4f}  [{meta['date']}] {meta['speaker']}: {document.page_content}")

    prompt = PromptTemplate.from_template("Answer from these memories:\n{context}\n\nQuestion: {question}")
    chain = (
        {
            "context": retriever | (lambda docs: "\n".join(d.page_content for d in docs)),
            "question": RunnablePassthrough(),
        }
        | prompt
        | FakeListLLM(responses=["Caroline went on 7 May 2023, the day before 8 May 2023."])
        | StrOutputParser()
    )
    print(f"Answer: {chain.invoke(QUERY)}")


if __name__ == "__main__":
    main()
