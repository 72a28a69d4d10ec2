"""The ``memreranker`` command: ``rerank`` (one query, some documents) and ``eval`` (the LoCoMo benchmark).

=================  ==========================================================================================
``backend_args``   the backend flags, generated from the backends' options dataclasses
``rerank``         ``memreranker rerank``: read documents, rank them, print a table or JSON
``eval``           ``memreranker eval locomo``: the retrieve-then-rerank benchmark
=================  ==========================================================================================

Examples:
    memreranker rerank --query "What does Caroline do?" --doc "She is a counselor." --doc "It rained."
    memreranker eval locomo --data locomo10.json --first-stage-only
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from memreranker_core.cli.backend_args import add_backend_arguments, reranker_from_args
from memreranker_core.cli.eval import add_eval_parser
from memreranker_core.cli.rerank import add_rerank_parser, read_documents
from memreranker_core.errors import ConfigurationError, InvalidInputError, MemRerankerError

__all__ = ["add_backend_arguments", "build_parser", "main", "read_documents", "reranker_from_args"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``memreranker``."""
    parser = argparse.ArgumentParser(prog="memreranker", description="Rerank memories with MemReranker.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the backend does")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_rerank_parser(subparsers)
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
        sys.stderr.write(f"memreranker: error: {type(exc).__name__}: {exc}\n")
        return 2 if isinstance(exc, (ConfigurationError, InvalidInputError)) else 1
    except OSError as exc:
        sys.stderr.write(f"memreranker: error: {exc}\n")
        return 2
    except UnicodeError as exc:  # text that cannot be decoded or encoded: a message, not a traceback
        sys.stderr.write(f"memreranker: error: {type(exc).__name__}: {exc}; use UTF-8 input and output\n")
        return 2
