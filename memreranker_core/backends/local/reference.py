"""What the local backend's ``model`` argument names: a hub id, a local path or a loaded ``CrossEncoder``.

Checked when the backend is built, without importing torch or sentence-transformers (constructing stays cheap);
the model itself loads on first use (``loading``).

Example:
    >>> model_reference("/models/MemReranker-0.6B")
    '/models/MemReranker-0.6B'
"""

from __future__ import annotations

import os
from typing import Any

from memreranker_core.errors import ConfigurationError

__all__ = ["DEFAULT_MODEL", "MODEL_ENV", "is_cross_encoder", "model_reference"]

MODEL_ENV = "MEMRERANKER_MODEL"
DEFAULT_MODEL = "IAAR-Shanghai/MemReranker-4B"


def is_cross_encoder(obj: Any) -> bool:
    """Whether ``obj`` is a sentence-transformers ``CrossEncoder`` (checked without importing the package)."""
    return type(obj).__name__ == "CrossEncoder" and type(obj).__module__.startswith("sentence_transformers")


def model_reference(model: Any) -> Any:
    """``model`` checked: a hub id or path (``str``), or a ``CrossEncoder``; None means ``MEMRERANKER_MODEL``, else
    ``IAAR-Shanghai/MemReranker-4B``.

    Raises:
        ConfigurationError: An empty string, or an object that is neither a string, a path nor a ``CrossEncoder``.
    """
    if model is None:
        model = os.environ.get(MODEL_ENV) or DEFAULT_MODEL
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if isinstance(model, str) and not model.strip():
        raise ConfigurationError("model is empty; give a hub id, a local path or a CrossEncoder")
    if not isinstance(model, str) and not is_cross_encoder(model):
        raise ConfigurationError(
            f"model must be a hub id, a local path or a sentence-transformers CrossEncoder, not {type(model).__name__}"
        )
    return model
