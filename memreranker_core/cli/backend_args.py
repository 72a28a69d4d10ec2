"""The backend flags every scoring subcommand shares, generated from the backends' options dataclasses.

Each ``option(...)`` field of ``LocalOptions`` and ``HostedOptions`` with ``cli=True`` becomes a flag
(``max_length`` -> ``--max-length``) with its type, choices and help; a new option gets its flag by being declared.
Only the flags given on the command line reach ``MemReranker``, so every default stays the core's own.
"""

from __future__ import annotations

import argparse
from typing import Any


def _option_classes() -> list[Any]:
    from memreranker_core.backends import BACKENDS, options_class

    return [options_class(name) for name in BACKENDS]


def option_flags() -> dict[str, Any]:
    """``{option name: spec}`` of every backend option that has a flag, in declaration order."""
    flags: dict[str, Any] = {}
    for cls in _option_classes():
        for name, (_default, spec) in cls.specs().items():
            if spec.cli:
                flags.setdefault(name, spec)
    return flags


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--backend``, ``--model``, ``--instruction`` and one flag per backend option to ``parser``."""
    from memreranker_core.backends import BACKENDS

    group = parser.add_argument_group("backend")
    group.add_argument("--backend", choices=sorted(BACKENDS), help="default: $MEMRERANKER_BACKEND, else local")
    group.add_argument("--model", help="local: hub id or path (default $MEMRERANKER_MODEL); hosted: model name")
    group.add_argument("--instruction", help="the <Instruct> line, for both backends (default: the model's own)")
    for name, spec in option_flags().items():
        flag = "--" + name.replace("_", "-")
        if spec.cli_type is bool:
            group.add_argument(flag, dest=name, action="store_true", default=None, help=spec.help)
        else:
            group.add_argument(flag, dest=name, type=spec.cli_type, choices=spec.choices, help=spec.help)


def reranker_from_args(args: argparse.Namespace, **extra: Any) -> Any:
    """Build a ``MemReranker`` from the backend flags (only those given, so defaults stay the core's)."""
    from memreranker_core import MemReranker

    options = {name: getattr(args, name) for name in option_flags() if getattr(args, name, None) is not None}
    return MemReranker(backend=args.backend, model=args.model, instruction=args.instruction, **options, **extra)
