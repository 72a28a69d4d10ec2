"""The local backend: MemReranker on your own CPU or GPU with torch + transformers.

Importing this package imports nothing heavy and none of its modules; each public name loads its module on first
use, so ``memreranker_core.backends.local.options`` can be read (by the CLI, or to classify an option name)
without the scoring code. One module per job:

=============  ==============================================================================================
``options``    ``LocalOptions``: every local setting, declared once
``backend``    ``LocalBackend``: the ``ScoringBackend`` (thread safety, load on first use, OOM recovery)
``batching``   token-budget batch plans, the shared-prefix decision, the pass-cost model, OOM halving
=============  ==============================================================================================
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module (relative to this package) that defines it
_EXPORTS = {
    "LocalOptions": "options",
    "LocalBackend": "backend",
    "LoadedModel": "backend",
    "PreparedCall": "backend",
    "CallPlan": "backend",
    "prepare": "backend",
    "plan": "backend",
    "plan_batches": "batching",
    "DEFAULT_BATCH_TOKENS": "batching",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
