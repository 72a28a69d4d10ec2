"""The local backend: MemReranker on your own CPU or GPU with torch + transformers.

Importing this package imports nothing heavy and none of its modules; each public name loads its module on first
use, so ``memreranker_core.backends.local.options`` can be read (by the CLI, or to classify an option name)
without the scoring code. One module per job; the first five never import torch, the others import torch (and
transformers) at their top, and ``LocalBackend`` imports them (through ``runner``) only when the model loads:

=============  ==============================================================================================
``options``    ``LocalOptions``: every local setting, declared once
``reference``  what ``model`` names (hub id, path, ``CrossEncoder``) and its default, checked without torch
``planning``   ``TokenBudget``, ``CallPlan``/``plan``: shared prefix or whole prompts, batches, the pass cost
``gate``       ``ModelGate``: one call on the model at a time, in arrival order; stopped calls leave at once
``backend``    ``LocalBackend``: the ``ScoringBackend`` (load on first use, one plan per call, the budget)
``runner``     ``ModelRunner``: the loaded model; runs a ``CallPlan`` (the torch boundary)
``loading``    ``load_model``: ``from_pretrained`` or a ``CrossEncoder`` reused; device checks; default instruction
``budget``     ``run_in_budget``: a plan's batches in order, a stop check between them, OOM halves the budget
``threads``    ``torch_threads``: ``num_threads`` for one call, set back after
``forward``    ``run_prefix``/``run_batch``: the forward passes, each row read at its last token
``cache``      ``PrefixCache``: the shared prefix's keys and values, broadcast to every row without a copy
=============  ==============================================================================================

The token ids come from ``memreranker_core.prompt_tokens`` (``PromptEncoder``, ``PreparedCall``), shared with the
hosted backend's exact mode.

**Public API for checks and benchmarks** (everything exported here; nothing else is meant to be imported):
``LocalBackend.loaded``, ``.prepare(request)``, ``.plan(request)`` (the plan ``score`` runs), ``.budget`` and
``.set_budget(...)`` show and tune how a call runs; ``run_prefix(loaded, ids)`` and
``run_batch(loaded, sequences, prefix)`` run the model's passes exactly as ``LocalBackend.score`` does;
``plan_batches``, ``share_prefix``, ``fill_batches``, ``plan_cost``, ``default_pass_overhead``,
``layer_flops_per_token`` and ``PASS_OVERHEAD`` are the planner and its pass-cost model.

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
    "DEFAULT_MODEL": "reference",
    "MODEL_ENV": "reference",
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
    "TokenBudget": "planning",
    "DEFAULT_BATCH_TOKENS": "budget",
    "default_batch_tokens": "budget",
    "run_in_budget": "budget",
    "Ran": "budget",
    "ModelGate": "gate",
    "ModelRunner": "runner",
    "torch_threads": "threads",
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
