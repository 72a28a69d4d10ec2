"""``ModelRunner``: the loaded model and how one planned call runs on it (the torch side of ``LocalBackend``).

``LocalBackend`` imports this module when the model first loads, and nothing of torch before: that import is the
local backend's one boundary between the light modules (options, planning, the gate) and torch. Here, and in the
modules this one imports (``loading``, ``forward``, ``cache``, ``budget``, ``threads``), torch and transformers are
imported at the top.

``ModelRunner.run`` runs a ``CallPlan`` as planned: the shared prefix once (when the plan shares it), then the
plan's batches in order, with ``torch_threads(num_threads)`` and ``torch.inference_mode()`` around them, and a
stop check before every pass. An out-of-memory error halves the budget and plans again only what is left
(``budget.run_in_budget``); a single document that never fits is a ``BackendError`` with the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from memreranker_core.backends.local.budget import Ran, default_batch_tokens, is_out_of_memory, run_in_budget
from memreranker_core.backends.local.forward import run_batch, run_prefix
from memreranker_core.backends.local.loading import LoadedModel, load_model
from memreranker_core.backends.local.options import LocalOptions
from memreranker_core.backends.local.planning import CallPlan, TokenBudget, default_pass_overhead
from memreranker_core.backends.local.threads import torch_threads
from memreranker_core.errors import BackendError

__all__ = ["ModelRunner"]


def _nothing(*_: object) -> None:
    return None


@dataclass(frozen=True)
class ModelRunner:
    """A loaded model and the options it runs with.

    Attributes:
        loaded: The model, tokenizer, prompt encoder and scoring vector.
        options: The backend's options (``num_threads``, ``max_length``, ``batch_tokens`` are read here).
    """

    loaded: LoadedModel
    options: LocalOptions

    @classmethod
    def load(cls, ref: Any, options: LocalOptions) -> ModelRunner:
        """Load ``ref`` as ``options`` say (``loading.load_model``)."""
        return cls(load_model(ref, options), options)

    def default_budget(self) -> TokenBudget:
        """The budget of a fresh backend: ``batch_tokens`` (else the device's default) and the device's pass cost."""
        device = self.loaded.device
        return TokenBudget(
            self.options.batch_tokens or default_batch_tokens(device),
            pass_overhead=default_pass_overhead(device, self.loaded.model.config),
        )

    def run(
        self,
        call_plan: CallPlan,
        *,
        check: Callable[[], None] = _nothing,
        keep_budget: Callable[[TokenBudget], None] = _nothing,
    ) -> Ran:
        """Run ``call_plan``: its prefix (if shared), then its batches in order; log-odds per document.

        Args:
            call_plan: The call's one plan (``planning.plan``).
            check: Called before every forward pass; raises to stop the call there.
            keep_budget: Called with each smaller budget after an out-of-memory error (kept for later calls).

        Raises:
            BackendError: Out of memory with a batch of one document.
        """
        loaded, sequences = self.loaded, call_plan.sequences
        with torch_threads(self.options.num_threads), torch.inference_mode():
            check()
            prefix = run_prefix(loaded, call_plan.call.shared) if call_plan.shares_prefix else None
            try:
                return run_in_budget(
                    [len(seq) for seq in sequences],
                    call_plan.batches,
                    call_plan.budget,
                    lambda batch: run_batch(loaded, [sequences[i] for i in batch], prefix),
                    check=check,
                    on_oom=self._free_cached_memory,
                    on_budget=keep_budget,
                )
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                longest = max(map(len, call_plan.call.sequences)) + len(call_plan.call.shared)
                raise BackendError(
                    f"out of memory even with one document per batch on {loaded.device}: a document of up to "
                    f"{longest} tokens does not fit; lower max_length (now {self.options.max_length}) or free "
                    "memory on the device"
                ) from exc

    def _free_cached_memory(self) -> None:
        if self.loaded.device.type == "cuda":
            torch.cuda.empty_cache()
