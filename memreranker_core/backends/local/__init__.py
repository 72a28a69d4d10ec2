"""The local backend: MemReranker on your own CPU or GPU with torch + transformers.

Importing this package imports nothing heavy and none of its modules; each public name loads its module on first
use, so ``memreranker_core.backends.local.options`` can be read (by the CLI, or to classify an option name)
without the scoring code. One module per job:

=============  ==============================================================================================
``options``    ``LocalOptions``: every local setting, declared once
``backend``    ``LocalBackend``: the ``ScoringBackend`` (thread safety, load on first use, budget, OOM recovery)
``loading``    ``load_model``: ``from_pretrained`` or a ``CrossEncoder`` reused; device checks; default instruction
``planning``   ``CallPlan``/``plan``: shared prefix or whole prompts, token-budget batches, the pass-cost model
``budget``     ``TokenBudget``: the token budget and ``run_in_budget``, which halves it when a batch runs out
``forward``    ``run_prefix``/``run_batch``: the forward passes, each row read at its last token
``cache``      ``PrefixCache``: the shared prefix's keys and values, broadcast to every row without a copy
=============  ==============================================================================================

The token ids come from ``memreranker_core.prompt_tokens`` (``PromptEncoder``, ``PreparedCall``), shared with the
hosted backend's exact mode.

**Public API for checks and benchmarks** (everything exported here; nothing else is meant to be imported):
``LocalBackend.loaded``, ``.prepare(request)``, ``.plan(request)``, ``.budget`` and ``.set_budget(...)`` show and
tune how a call runs; ``run_prefix(loaded, ids)`` and ``run_batch(loaded, sequences, prefix)`` run the model's
passes exactly as ``LocalBackend.score`` does; ``plan_batches``, ``share_prefix``, ``fill_batches``,
``plan_cost``, ``default_pass_overhead``, ``layer_flops_per_token`` and ``PASS_OVERHEAD`` are the planner and its
pass-cost model.

Example:
    >>> from memreranker_core.backends.local import plan_batches
    >>> plan_batches([5, 40, 3, 40], batch_tokens=80)
    [[1, 3], [0], [2]]
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module (relative to this package) that defines it
_EXPORTS = {
    "LocalOptions": "options",
    "LocalBackend": "backend",
    "DEFAULT_MODEL": "loading",
    "MODEL_ENV": "loading",
    "LoadedModel": "loading",
    "load_model": "loading",
    "CallPlan": "planning",
    "plan": "planning",
    "plan_batches": "planning",
    "share_prefix": "planning",
    "fill_batches": "planning",
    "plan_cost": "planning",
    "PASS_OVERHEAD": "planning",
    "default_pass_overhead": "planning",
    "layer_flops_per_token": "planning",
    "TokenBudget": "budget",
    "DEFAULT_BATCH_TOKENS": "budget",
    "default_batch_tokens": "budget",
    "run_in_budget": "budget",
    "run_prefix": "forward",
    "run_batch": "forward",
    "PrefixCache": "cache",
    "shared_prefix_cache": "cache",
}

#: names kept here from ``memreranker_core.prompt_tokens`` (the prompt's token ids), for one import line
_PROMPT_TOKENS = {"PreparedCall", "PromptEncoder"}

__all__ = sorted({*_EXPORTS, *_PROMPT_TOKENS})


def __getattr__(name: str) -> Any:
    if name in _PROMPT_TOKENS:
        return getattr(importlib.import_module("memreranker_core.prompt_tokens"), name)
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
