"""The ``memreranker`` command.

Examples:
    memreranker rerank --query "What does Caroline do?" --doc "She is a counselor." --doc "It rained."
    memreranker rerank --query "..." --docs-file memories.jsonl --top-n 5 --json
    cat memories.txt | memreranker rerank --query "..." --docs-file - --backend hosted
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from memreranker_core.errors import MemRerankerError

PREVIEW_WIDTH = 70


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that choose and configure the backend; shared by every subcommand that scores."""
    group = parser.add_argument_group("backend")
    group.add_argument("--backend", choices=["local", "hosted"], help="default: $MEMRERANKER_BACKEND, else local")
    group.add_argument("--model", help="local: hub id or path (default $MEMRERANKER_MODEL); hosted: model name")
    group.add_argument("--instruction", help="the <Instruct> line (default: the model's own)")
    group.add_argument("--device", help="local: cuda, cuda:1, cpu (default: CUDA if available)")
    group.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="local: weights' precision")
    group.add_argument("--max-length", type=int, help="local: most tokens per prompt (default 8192)")
    group.add_argument("--base-url", help="hosted: service URL (default $MEMOS_BASE_URL, else the Memos API)")
    group.add_argument("--api-style", choices=["memos", "vllm", "jina", "cohere", "tei"], help="hosted dialect")
    group.add_argument("--api-key", help="hosted: API key (prefer the MEMOS_API_KEY variable: arguments show in `ps`)")
    group.add_argument("--read-timeout", type=float, help="hosted: seconds to wait for an answer")
    group.add_argument("--max-retries", type=int, help="hosted: retries on timeouts, 408, 429 and 5xx")
    group.add_argument("--max-concurrency", type=int, help="hosted: requests of one call in flight at once")
    group.add_argument(
        "--allow-insecure-http",
        action="store_true",
        default=None,
        help="hosted: allow plain http:// to a host that is not loopback (memories and key travel in clear)",
    )


def reranker_from_args(args: argparse.Namespace, **extra: Any) -> Any:
    """Build a ``MemReranker`` from the backend options (only those given, so defaults stay the core's)."""
    from memreranker_core import MemReranker

    names = (
        *("device", "dtype", "max_length"),
        *("base_url", "api_style", "api_key", "read_timeout", "max_retries", "max_concurrency", "allow_insecure_http"),
    )
    options = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return MemReranker(backend=args.backend, model=args.model, instruction=args.instruction, **options, **extra)


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
        raise SystemExit("memreranker rerank: no documents; give --doc TEXT (repeatable) or --docs-file FILE")
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``memreranker``."""
    parser = argparse.ArgumentParser(prog="memreranker", description="Rerank memories with MemReranker.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the backend does")
    subparsers = parser.add_subparsers(dest="command", required=True)

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
    from memreranker_core.eval.cli import add_eval_parser

    add_eval_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stdin: TextIO | None = None) -> int:
    """Run the command line; returns the exit status (2 for a usage or input error, 1 for a backend failure)."""
    args = build_parser().parse_args(argv)
    if not args.verbose:  # keep transformers' weight-loading bars out of the table
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.handler(args, stdout or sys.stdout, stdin or sys.stdin))
    except MemRerankerError as exc:
        from memreranker_core.errors import ConfigurationError, InvalidInputError

        sys.stderr.write(f"memreranker: error: {type(exc).__name__}: {exc}\n")
        return 2 if isinstance(exc, (ConfigurationError, InvalidInputError)) else 1
    except OSError as exc:
        sys.stderr.write(f"memreranker: error: {exc}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
