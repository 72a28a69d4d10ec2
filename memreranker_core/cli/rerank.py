"""``memreranker rerank``: score and rank documents for one query.

Examples:
    memreranker rerank --query "What does Caroline do?" --doc "She is a counselor." --doc "It rained."
    memreranker rerank --query "..." --docs-file memories.jsonl --top-n 5 --json
    cat memories.txt | memreranker rerank --query "..." --docs-file - --backend hosted
"""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from memreranker_core.cli.backend_args import add_backend_arguments, reranker_from_args

PREVIEW_WIDTH = 70


def read_documents(path: str, stdin: TextIO) -> list[Any]:
    """Documents from a ``.jsonl`` file (strings, or objects with ``text``), else one per line; ``-`` is stdin.

    Raises:
        InvalidInputError: A JSON line is neither a string nor an object with a string ``text``.
    """
    from memreranker_core.errors import InvalidInputError

    if path == "-":
        lines = stdin.read().splitlines()
    else:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    looks_json = path.endswith(".jsonl") or (path == "-" and lines and lines[0].lstrip().startswith(("{", '"')))
    if not looks_json:
        return [line for line in lines if line.strip()]
    documents: list[Any] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{path}:{number} is not valid JSON ({exc.msg})") from exc
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            documents.append(item)
        elif isinstance(item, str):
            documents.append(item)
        else:
            raise InvalidInputError(f"{path}:{number} must be a JSON string or an object with a string 'text'")
    return documents


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_WIDTH else flat[: PREVIEW_WIDTH - 1] + "…"


def run_rerank(args: argparse.Namespace, stdout: TextIO, stdin: TextIO) -> int:
    """Handle ``memreranker rerank``."""
    documents: list[Any] = list(args.doc or [])
    if args.docs_file:
        documents.extend(read_documents(args.docs_file, stdin))
    if not documents:
        from memreranker_core.errors import InvalidInputError

        raise InvalidInputError("no documents to rank; give --doc TEXT (repeatable) or --docs-file FILE (non-empty)")
    reranker = reranker_from_args(args, document_template=args.template)
    results = reranker.rerank(args.query, documents, top_n=args.top_n, score_threshold=args.threshold)
    if args.json:
        rows = [
            {"rank": rank, "index": r.index, "score": r.score, "logit": r.logit, "document": r.document}
            for rank, r in enumerate(results, start=1)
        ]
        json.dump(rows, stdout, ensure_ascii=False, indent=2)
        stdout.write("\n")
        return 0
    stdout.write(f"{'rank':>4}  {'score':>6}  {'index':>5}  document\n")
    for rank, result in enumerate(results, start=1):
        stdout.write(f"{rank:>4}  {result.score:6.4f}  {result.index:>5}  {_preview(result.document)}\n")
    kept = f"{len(results)} of {len(documents)} documents"
    stdout.write(f"({kept}; scores are P(yes) in [0, 1])\n")
    return 0


def add_rerank_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``rerank`` on the ``memreranker`` command's subparsers."""
    rerank = subparsers.add_parser("rerank", help="score and rank documents for one query")
    rerank.add_argument("--query", "-q", required=True, help="the question")
    rerank.add_argument("--doc", "-d", action="append", metavar="TEXT", help="a document (repeatable)")
    rerank.add_argument(
        "--docs-file",
        metavar="FILE",
        help=".jsonl (strings or {'text', ...} objects) or .txt (one per line); - is stdin",
    )
    rerank.add_argument("--top-n", type=int, help="keep at most N documents")
    rerank.add_argument("--threshold", type=float, help="keep documents with P(yes) >= this")
    rerank.add_argument("--template", help="document template for .jsonl objects, e.g. '[{date}] {speaker}: {text}'")
    rerank.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_backend_arguments(rerank)
    rerank.set_defaults(handler=run_rerank)
    return rerank
