"""Scoring backends. Each one turns a ``ScoreRequest`` into log-odds, one per document, in input order.

Each backend is a subpackage (``local``, ``hosted``) that declares its settings once, in a frozen options dataclass
(``LocalOptions``, ``HostedOptions``). Backends are imported lazily, and only the one chosen: the hosted path never
imports a local module (torch above all) and the local path never imports a hosted one, except that an option the
chosen backend does not know is looked up in the other backend's options declaration, so that switching backends
stays one argument.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from memreranker_core.backends.options import BackendOptions
from memreranker_core.errors import ConfigurationError
from memreranker_core.types import ScoreRequest

logger = logging.getLogger(__name__)

#: The environment variable holding the Memos API key: read by the hosted backend (Memos style only) and named by
#: the adapters' serialized secrets (LangChain ``secret_from_env``, Haystack ``Secret.from_env_var``).
MEMOS_API_KEY_ENV = "MEMOS_API_KEY"

#: backend name -> ("module:OptionsClass", "module:BackendClass")
BACKENDS = {
    "local": (
        "memreranker_core.backends.local.options:LocalOptions",
        "memreranker_core.backends.local.backend:LocalBackend",
    ),
    "hosted": (
        "memreranker_core.backends.hosted.options:HostedOptions",
        "memreranker_core.backends.hosted.backend:HostedBackend",
    ),
}


class ScoringBackend(Protocol):
    """What ``MemReranker`` needs of a backend. Constructed as ``Backend(model=..., options=<its options>)``.

    ``score`` gets a ``ScoreRequest`` whose ``instruction`` may be ``None``: the model's default, which the backend
    resolves with ``memreranker_core.checkpoint.resolve_instruction`` (the checkpoint's own, else Qwen3-Reranker's).
    """

    #: The validated options the backend was built with.
    options: BackendOptions

    def __init__(self, model: Any = None, *, options: BackendOptions) -> None: ...

    @property
    def model_ref(self) -> Any:
        """The model it scores with: a hub id, a local path or a service's model name (a string, or ``None`` for
        the service's own), or a loaded model object. ``MemReranker`` refuses to pickle a reranker whose model is
        an object, since its settings cannot name it."""
        ...

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
        """Every setting in force (defaults included), secret-free, for ``repr`` and logs."""
        ...


def _load(reference: str) -> Any:
    module_name, attribute = reference.split(":")
    return getattr(importlib.import_module(module_name), attribute)


def _check_name(name: str) -> None:
    if name not in BACKENDS:
        raise ConfigurationError(
            f"unknown backend {name!r}; choose 'local' (your own CPU/GPU) or 'hosted' (the Memos API or a "
            "vLLM/Jina/Cohere/TEI /rerank endpoint), by argument or the MEMRERANKER_BACKEND variable"
        )


def options_class(name: str) -> type[BackendOptions]:
    """The options dataclass of backend ``name`` (imports only its options module)."""
    _check_name(name)
    return _load(BACKENDS[name][0])


def backend_class(name: str) -> type[ScoringBackend]:
    """Import and return the backend class registered under ``name``."""
    _check_name(name)
    return _load(BACKENDS[name][1])


def split_options(name: str, given: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``given`` into backend ``name``'s options and the other backends' (accepted, ignored).

    Raises:
        ConfigurationError: An option no backend knows, with the closest known names.
    """
    own = options_class(name).names()
    mine = {key: value for key, value in given.items() if key in own}
    rest = {key: value for key, value in given.items() if key not in own}
    if not rest:
        return mine, {}
    every = set(own)
    for other in BACKENDS:
        if other != name:
            every |= options_class(other).names()
    unknown = sorted(set(rest) - every)
    if unknown:
        hints = {key: difflib.get_close_matches(key, sorted(every), n=1) for key in unknown}
        detail = ", ".join(
            f"{key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "") for key, hint in hints.items()
        )
        raise ConfigurationError(f"unknown option(s) {detail}; known options: {sorted(every)}")
    logger.debug("backend %r ignores options meant for another backend: %s", name, sorted(rest))
    return mine, rest


def public_settings(given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` (options of any backend) without its secrets, for serialization."""
    secret = set()
    for name in BACKENDS:
        for option_name, (_default, spec) in options_class(name).specs().items():
            if spec.secret and option_name in given:
                secret.add(option_name)
    return {key: value for key, value in given.items() if key not in secret and value is not None}


def create_backend(name: str, model: Any, options: Mapping[str, Any]) -> tuple[ScoringBackend, dict[str, Any]]:
    """Build backend ``name`` from the options meant for it.

    Returns:
        The backend, and the options meant for another backend (accepted and ignored, so that switching backends
        is one argument).

    Raises:
        ConfigurationError: An option no backend knows, or a value the chosen backend's options refuse.
    """
    mine, ignored = split_options(name, options)
    backend = backend_class(name)(model=model, options=options_class(name).from_given(mine))
    return backend, ignored
