"""Scoring backends. Each one turns a ``ScoreRequest`` into log-odds, one per document, in input order.

Backends are imported lazily: choosing the hosted backend never imports torch.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from memreranker_core.errors import ConfigurationError
from memreranker_core.types import ScoreRequest

logger = logging.getLogger(__name__)

#: backend name -> "module:Class"
BACKENDS = {
    "local": "memreranker_core.backends.local:LocalBackend",
    "hosted": "memreranker_core.backends.hosted:HostedBackend",
}


class ScoringBackend(Protocol):
    """What ``MemReranker`` needs of a backend."""

    #: Names of the keyword options the backend's constructor takes (besides ``model``).
    OPTION_NAMES: frozenset[str]

    def score(self, request: ScoreRequest) -> list[float]:
        """Return log-odds ``logit(yes) - logit(no)`` for each document of ``request``, in input order."""
        ...

    def warm_up(self) -> None:
        """Do the expensive set-up now (load the model, open the HTTP session)."""
        ...

    def close(self) -> None:
        """Release what the backend holds."""
        ...

    def describe(self) -> dict[str, Any]:
        """Public, secret-free settings, for ``repr`` and logs."""
        ...


def backend_class(name: str) -> type[ScoringBackend]:
    """Import and return the backend class registered under ``name``."""
    if name not in BACKENDS:
        raise ConfigurationError(
            f"unknown backend {name!r}; choose 'local' (your own CPU/GPU) or 'hosted' (the Memos API or a "
            "vLLM/Jina/Cohere/TEI /rerank endpoint), by argument or the MEMRERANKER_BACKEND variable"
        )
    module_name, class_name = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def all_option_names() -> dict[str, frozenset[str]]:
    """Option names of every backend, by backend name."""
    return {name: backend_class(name).OPTION_NAMES for name in BACKENDS}


def create_backend(name: str, model: Any, options: Mapping[str, Any]) -> ScoringBackend:
    """Build backend ``name`` from the options meant for it.

    Options of the other backend are accepted and ignored, so that switching backends is one argument; an option
    no backend knows raises ``ConfigurationError`` with the closest known names.
    """
    known = all_option_names()
    every = frozenset().union(*known.values())
    unknown = sorted(set(options) - every)
    if unknown:
        hints = {key: difflib.get_close_matches(key, every, n=1) for key in unknown}
        detail = ", ".join(
            f"{key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "") for key, hint in hints.items()
        )
        raise ConfigurationError(f"unknown option(s) {detail}; known options: {sorted(every)}")
    chosen = {key: value for key, value in options.items() if key in known[name]}
    ignored = sorted(set(options) - set(chosen))
    if ignored:
        logger.debug("backend %r ignores options meant for another backend: %s", name, ignored)
    return backend_class(name)(model=model, **chosen)
