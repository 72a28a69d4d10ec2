"""Rerank memories with the hosted Memos Rerank API (or any vLLM / Jina / Cohere / TEI ``/rerank`` endpoint).

Run:

    MEMOS_API_KEY=... python examples/hosted.py
    MEMOS_BASE_URL=https://gpu-box:8000 MEMOS_API_STYLE=vllm python examples/hosted.py  # your own vLLM server

The key is read from ``MEMOS_API_KEY`` and the URL from ``MEMOS_BASE_URL`` (default: the Memos API).
"""

from __future__ import annotations

import os
import sys

from memreranker_core import MemReranker, errors

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


def main() -> int:
    reranker = MemReranker(
        backend="hosted",
        model=os.environ.get("MEMOS_MODEL"),  # None: memos-reranker-4b
        api_style=os.environ.get("MEMOS_API_STYLE"),  # None: memos
        document_template="[{date}] {speaker}: {text}",
    )
    try:
        results = reranker.rerank(QUERY, MEMORIES, top_n=3)
    except errors.AuthenticationError as exc:
        print(f"The service refused the call: {exc}\nSet MEMOS_API_KEY to your Memos API key.", file=sys.stderr)
        return 1
    finally:
        reranker.close()
    print(f"Query: {QUERY}  ({reranker!r})")
    for result in results:
        memory = MEMORIES[result.index]
        print(f"  {result.score:.4f}  [{memory['date']}] {memory['speaker']}: {result.document}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
