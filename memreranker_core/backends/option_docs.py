"""The docs' option tables, generated from the options declarations (``specs()``), so the docs never drift.

A document holds each generated table between two marker comments naming the backend:

    <!-- options-table: hosted -->
    | option | default | flag | meaning |
    ...
    <!-- /options-table -->

Regenerate every table after changing an option (``--check`` only reports stale ones, with exit status 1):

    python -m memreranker_core.backends.option_docs README.md docs/serving.md

``tests/unit/test_option_docs.py`` fails while a table in README.md or docs/ differs from its declaration.

Example:
    >>> from dataclasses import dataclass
    >>> from memreranker_core.backends.options import BackendOptions, option, whole
    >>> @dataclass(frozen=True, repr=False)
    ... class DemoOptions(BackendOptions):
    ...     BACKEND = "demo"
    ...     retries: int = option(3, check=whole(0), cli_type=int, help="demo: retries after the first attempt")
    >>> print(option_table(DemoOptions))
    | option | default | flag | meaning |
    | --- | --- | --- | --- |
    | `retries` | `3` | `--retries` | retries after the first attempt |
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memreranker_core.backends.options import BackendOptions, OptionSpec

#: One generated table: the opening marker (naming the backend), the table, the closing marker.
TABLE = re.compile(
    r"(?P<open><!-- options-table: (?P<backend>\w+) -->\n)(?P<table>.*?)(?P<close><!-- /options-table -->)", re.S
)


def option_table(cls: type[BackendOptions]) -> str:
    """A markdown table of ``cls``'s options, in declaration order: name, default, command-line flag, help.

    The help's ``"<backend>: "`` prefix (there for the shared ``--help``) is left out; accepted values and
    secrecy are added.
    """
    rows = ["| option | default | flag | meaning |", "| --- | --- | --- | --- |"]
    for name, (default, spec) in cls.specs().items():
        flag = f"`--{name.replace('_', '-')}`" if spec.cli else "none"
        rows.append(f"| `{name}` | {_default(default)} | {flag} | {_cell(_meaning(cls, spec))} |")
    return "\n".join(rows)


def _default(value: Any) -> str:
    if value is None:  # "not given": the meaning says what then applies
        return "`None`"
    return f'`"{value}"`' if isinstance(value, str) else f"`{value!r}`"


def _meaning(cls: type[BackendOptions], spec: OptionSpec) -> str:
    meaning = spec.help.removeprefix(f"{cls.BACKEND}: ")
    if spec.choices:
        meaning += "; one of " + ", ".join(f'`"{choice}"`' for choice in spec.choices)
    if spec.secret and "secret" not in meaning:
        meaning += "; secret: never shown or serialized"
    return meaning


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def update_tables(text: str) -> str:
    """``text`` with every marked table regenerated from its backend's options.

    Raises:
        ConfigurationError: A marker names an unknown backend.
    """
    from memreranker_core.backends import options_class

    def regenerate(match: re.Match[str]) -> str:
        table = option_table(options_class(match.group("backend")))
        return f"{match.group('open')}{table}\n{match.group('close')}"

    return TABLE.sub(regenerate, text)


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate the tables of the files named (``--check``: only report the stale ones). Exit status 1 when a
    file has no table, or (``--check``) when one is stale."""
    parser = argparse.ArgumentParser(
        prog="python -m memreranker_core.backends.option_docs",
        description="Regenerate the option tables of markdown files from the options declarations.",
    )
    parser.add_argument("files", nargs="+", type=Path, help="markdown files holding marked option tables")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is stale")
    args = parser.parse_args(argv)
    status = 0
    for path in args.files:
        text = path.read_text(encoding="utf-8")
        updated = update_tables(text)
        if not TABLE.search(text):
            print(f"{path}: no <!-- options-table: BACKEND --> marker", file=sys.stderr)
            status = 1
        elif updated != text:
            if args.check:
                print(f"{path}: option tables are stale; regenerate them without --check", file=sys.stderr)
                status = 1
            else:
                path.write_text(updated, encoding="utf-8")
                print(f"{path}: option tables regenerated")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
