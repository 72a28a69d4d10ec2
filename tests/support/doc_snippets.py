"""What the documentation's code blocks run against, offline: the tiny model, a loopback server, stand-ins.

``tests/integration/test_documentation.py`` runs every ``python`` and ``bash`` block of README.md and docs/*.md with
Sybil. A block that shows only the reranker step of a pipeline uses the names defined here (``vector_store``,
``index``, ``pipeline``, ``query``, ``docs``), so the snippet itself stays what a user would write. Blocks that
cannot run offline are marked ``<!-- skip: next "reason" -->`` in the document itself.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.memories import MEMORIES, QUERY
from tests.support.rerank_server import RerankServer

API_KEY = "sk-docs-snippet-key-0123456789"
#: A script runs at most this long (the eval blocks on a cut-down LoCoMo are the slowest).
SCRIPT_TIMEOUT_S = 600


def documentation_env(model_path: Path, server: RerankServer) -> dict[str, str]:
    """Environment of a documentation run: the tiny model for the local backend, the loopback server for hosted."""
    env = dict(os.environ)
    for name in ("MEMRERANKER_BACKEND", "MEMOS_API_STYLE", "MEMOS_MODEL", "MEMRERANKER_DEVICE"):
        env.pop(name, None)
    env.update(
        MEMRERANKER_MODEL=str(model_path),
        MEMOS_BASE_URL=server.base_url,
        MEMOS_API_KEY=API_KEY,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
    )
    return env


def write_input_files(folder: Path, locomo: Path | None) -> None:
    """The files the documented commands name: memories.jsonl, memories.txt and (cut down) locomo10.json."""
    rows = [{"text": text, "speaker": "Melanie", **metadata} for _id, text, metadata in MEMORIES]  # every field set
    (folder / "memories.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    (folder / "memories.txt").write_text("".join(row["text"] + "\n" for row in rows), encoding="utf-8")
    if locomo is not None:  # two conversations, ten questions each: the commands run as written, in seconds
        data = json.loads(locomo.read_text(encoding="utf-8"))[:2]
        for sample in data:
            sample["qa"] = sample["qa"][:10]
        (folder / "locomo10.json").write_text(json.dumps(data), encoding="utf-8")


def run_shell_block(source: str, cwd: Path, env: dict[str, str]) -> str | None:
    """Run one ``bash`` block as a script (stopping at the first failing command); the failure text, or None."""
    script = "set -euo pipefail\n" + source
    done = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S
    )
    if done.returncode != 0:
        return f"exit {done.returncode} from:\n{source}\nstdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr[-3000:]}"
    return None


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """``os.environ`` set to ``env`` while Python blocks run (restored after)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def stand_ins(model_path: Path, server: RerankServer) -> dict[str, Any]:
    """Names that snippets showing only the reranker step rely on, built offline."""
    texts = [text for _id, text, _metadata in MEMORIES]
    names: dict[str, Any] = {
        "query": QUERY,
        "docs": texts,
        "documents": texts,
        "memories": texts,
        "tiny_model_path": str(model_path),
        "server_url": server.base_url,
        "shell": lambda command: subprocess.run(shlex.split(command), check=True),
    }
    for build in (_langchain_stand_ins, _llamaindex_stand_ins, _haystack_stand_ins):
        try:
            names.update(build())
        except ImportError:  # that framework is not installed: its blocks fail loudly, as they would for a user
            continue
    return names


def _langchain_stand_ins() -> dict[str, Any]:
    from langchain_core.documents import Document
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import InMemoryVectorStore

    vector_store = InMemoryVectorStore(embedding=DeterministicFakeEmbedding(size=32))
    vector_store.add_documents([Document(id=i, page_content=text, metadata=meta) for i, text, meta in MEMORIES])
    return {"vector_store": vector_store, "format_docs": lambda docs: "\n\n".join(d.page_content for d in docs)}


def _llamaindex_stand_ins() -> dict[str, Any]:
    from llama_index.core import VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.llms import MockLLM
    from llama_index.core.schema import TextNode

    nodes = [TextNode(id_=i, text=text, metadata=meta) for i, text, meta in MEMORIES]
    return {"index": VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=16)), "llm": MockLLM()}


def _haystack_stand_ins() -> dict[str, Any]:
    from haystack import Document, Pipeline
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    store = InMemoryDocumentStore()
    store.write_documents([Document(id=i, content=text, meta=meta) for i, text, meta in MEMORIES])
    pipeline = Pipeline()
    pipeline.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=50))
    return {"store": store, "pipeline": pipeline}
