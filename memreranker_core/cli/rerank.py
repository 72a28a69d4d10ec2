"""``memreranker rerank``: score and rank documents for one query.

Documents come from ``--doc`` (repeatable) and ``--docs-file`` (a file, or ``-`` for stdin). A file is read as UTF-8
(a leading byte-order mark is dropped) and split on ``\\n`` only, so a memory holding a Unicode line separator
(U+2028, U+2029, form feed, NEL...) stays one document; a ``\\r`` before the ``\\n`` is dropped. Blank lines are
skipped. ``--format`` says how to read each line:

- ``jsonl``: each line is a JSON string, or an object with a string ``text`` and any metadata fields;
- ``text``: each line is one document's text;
- ``auto`` (the default): ``jsonl`` for a file named ``*.jsonl`` (any case), and for stdin whose first non-blank
  line starts with ``{`` or ``"``; ``text`` otherwise.

``--template`` fills ``{text}`` and the metadata fields of each document; a document without metadata (a ``--doc``,
a plain-text line, a JSON string) has ``{text}`` only, and a template needing more is refused naming that document.

``--json`` prints standard JSON: one object per result with ``rank``, ``index``, ``score``, ``logit`` (``null`` for
a score of exactly 0 or 1, whose log-odds are infinite) and ``document``.

Examples:
    memreranker rerank --query "What does Caroline do?" --doc "She is a counselor." --doc "It rained."
    memreranker rerank --query "..." --docs-file memories.jsonl --top-n 5 --json
    cat memories.txt | memreranker rerank --query "..." --docs-file - --format text --backend hosted
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any, BinaryIO, TextIO

from memreranker_core.cli.backend_args import add_backend_arguments, reranker_from_args
from memreranker_core.documents import template_fields
from memreranker_core.errors import InvalidInputError

PREVIEW_WIDTH = 70
FORMATS = ("auto", "jsonl", "text")
_BOM = "\ufeff"


def read_documents(path: str, stdin: TextIO, format: str = "auto") -> list[Any]:
    """Documents from ``path`` (``-``: stdin), read as the module docstring says.

    Args:
        path: A file path, or ``-`` for ``stdin``.
        stdin: The standard input (its binary ``buffer`` is read when it has one, so bytes are decoded here).
        format: ``"auto"``, ``"jsonl"`` or ``"text"``.

    Returns:
        Strings and ``{"text": ..., **metadata}`` mappings, in file order.

    Raises:
        InvalidInputError: The input is not UTF-8, or a JSON line is invalid or neither a string nor an object with
            a string ``text``; the message names the line.
    """
    return [document for _origin, document in read_numbered(path, stdin, format)]


def read_numbered(path: str, stdin: TextIO, format: str = "auto") -> list[tuple[str, Any]]:
    """``read_documents`` with each document's origin (``"memories.jsonl:3"``) for error messages."""
    if format not in FORMATS:
        raise InvalidInputError(f"--format must be one of {list(FORMATS)}, not {format!r}")
    name = "<stdin>" if path == "-" else path
    text = _read_text(path, stdin, name)
    lines = [(number, line.removesuffix("\r")) for number, line in enumerate(text.split("\n"), start=1)]
    lines = [(number, line) for number, line in lines if line.strip()]
    if format == "auto":
        if path == "-":
            format = "jsonl" if lines and lines[0][1].lstrip().startswith(("{", '"')) else "text"
        else:
            format = "jsonl" if path.lower().endswith(".jsonl") else "text"
    if format == "text":
        return [(f"{name}:{number}", line) for number, line in lines]
    return [(f"{name}:{number}", _json_document(line, f"{name}:{number}")) for number, line in lines]


def _read_text(path: str, stdin: TextIO, name: str) -> str:
    if path == "-":
        buffer: BinaryIO | None = getattr(stdin, "buffer", None)
        if buffer is None:  # a text stream without bytes underneath (already decoded)
            return stdin.read().removeprefix(_BOM)
        data = buffer.read()
    else:
        with open(path, "rb") as handle:
            data = handle.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidInputError(
            f"{name}:{line} is not UTF-8 (byte {data[exc.start : exc.start + 1]!r} at offset {exc.start}); "
            "convert the file to UTF-8 first, e.g. iconv -f LATIN1 -t UTF-8"
        ) from None


def _json_document(line: str, origin: str) -> Any:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{origin} is not valid JSON ({exc.msg}); use --format text to read each line as plain text"
        ) from None
    except RecursionError:
        raise InvalidInputError(f"{origin} is JSON nested too deeply to read") from None
    except ValueError as exc:  # an integer longer than Python reads (sys.get_int_max_str_digits())
        raise InvalidInputError(f"{origin} is not JSON this reader accepts ({exc})") from None
    if isinstance(item, str) or (isinstance(item, dict) and isinstance(item.get("text"), str)):
        return item
    raise InvalidInputError(f"{origin} must be a JSON string or an object with a string 'text'")


def check_template(template: str, documents: list[tuple[str, Any]]) -> None:
    """Refuse, naming the first document concerned, a ``--template`` field that a document lacks.

    Raises:
        ConfigurationError: The template is not one of plain named fields.
        InvalidInputError: A document lacks a field the template needs.
    """
    needed = [name for name in template_fields(template) if name != "text"]
    for origin, document in documents:
        metadata = document if isinstance(document, dict) else {}
        missing = [name for name in needed if name not in metadata]
        if missing:
            kind = "has metadata fields " + str(sorted(set(metadata) - {"text"})) if metadata else "has only {text}"
            raise InvalidInputError(
                f"{origin}: --template {template!r} needs the field(s) {missing}, but this document {kind}; give "
                "documents as JSONL objects with those keys, or use a template that needs only {text}"
            )


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_WIDTH else flat[: PREVIEW_WIDTH - 1] + "…"


def _finite(logit: float | None) -> float | None:
    """A logit for ``--json``: ``null`` where it is infinite (a score of exactly 0 or 1), which JSON cannot hold."""
    return logit if logit is not None and math.isfinite(logit) else None


def run_rerank(args: argparse.Namespace, stdout: TextIO, stdin: TextIO) -> int:
    """Handle ``memreranker rerank``."""
    numbered: list[tuple[str, Any]] = [(f"--doc {n}", doc) for n, doc in enumerate(args.doc or [], start=1)]
    if args.docs_file:
        numbered.extend(read_numbered(args.docs_file, stdin, args.format))
    if not numbered:
        raise InvalidInputError("no documents to rank; give --doc TEXT (repeatable) or --docs-file FILE (non-empty)")
    if args.template is not None:
        check_template(args.template, numbered)
    documents = [document for _origin, document in numbered]
    reranker = reranker_from_args(args, document_template=args.template)
    results = reranker.rerank(args.query, documents, top_n=args.top_n, score_threshold=args.threshold)
    if args.json:
        rows = [
            {"rank": rank, "index": r.index, "score": r.score, "logit": _finite(r.logit), "document": r.document}
            for rank, r in enumerate(results, start=1)
        ]
        json.dump(rows, stdout, ensure_ascii=False, indent=2, allow_nan=False)  # standard JSON: no Infinity
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
    rerank = subparsers.add_parser(
        "rerank",
        help="score and rank documents for one query",
        description="Score and rank documents for one query. Files and stdin are UTF-8, one document per \\n-line.",
    )
    rerank.add_argument("--query", "-q", required=True, help="the question")
    rerank.add_argument("--doc", "-d", action="append", metavar="TEXT", help="a document (repeatable)")
    rerank.add_argument(
        "--docs-file",
        metavar="FILE",
        help="UTF-8 file, one document per line (split on \\n only; blank lines skipped); - is stdin",
    )
    rerank.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="how --docs-file lines are read: jsonl (JSON strings or {'text', ...} objects), text (one document "
        "per line), or auto (default): jsonl for *.jsonl files (any case) and for stdin whose first non-blank line "
        'starts with { or ", else text',
    )
    rerank.add_argument("--top-n", type=int, help="keep at most N documents")
    rerank.add_argument("--threshold", type=float, help="keep documents with P(yes) >= this")
    rerank.add_argument(
        "--template",
        help="document template of plain {fields}, e.g. '[{date}] {speaker}: {text}'; a document without "
        "metadata (--doc, a text line, a JSON string) has {text} only",
    )
    rerank.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_backend_arguments(rerank)
    rerank.set_defaults(handler=run_rerank)
    return rerank
