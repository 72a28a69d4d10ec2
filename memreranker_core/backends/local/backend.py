"""``LocalBackend``: MemReranker on your own CPU or GPU with torch + transformers.

How it gets its speed (scores stay equal to the model card's transformers recipe):

1. The shared prefix of a call (system prompt, instruction, context, query, up to ``<Document>:``) is run once
   and its key/value cache reused by every document, when that saves more than the extra forward pass costs;
   otherwise (one document, or a few on a GPU, where small passes are launch-bound) each whole prompt runs alone
   (``planning.share_prefix``).
2. Documents (``" " + document`` + suffix) run against that cache in length-sorted batches bounded by a token
   budget (``batch_tokens``), right-padded; the batches are cut where padding would cost more than one more
   pass (``planning.plan_batches``, with a per-device pass cost).
3. Only each document's last real token is read, and scored with one fp32 vector ``W[yes] - W[no]``: no
   vocabulary-wide projection anywhere (``forward``).
4. The prefix cache is shared by broadcasting, never copied per document or kept per layer, and padding needs no
   attention mask (it only ever follows a row's real tokens), so memory is bounded by the token budget
   (``cache``).
5. A batch that runs out of memory halves the budget and is retried (logged once); see ``budget``.

torch and transformers are imported when the model loads, not when this module is imported.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from memreranker_core.backends.local.budget import TokenBudget, default_batch_tokens, is_out_of_memory, run_in_budget
from memreranker_core.backends.local.forward import run_batch, run_prefix
from memreranker_core.backends.local.loading import DEFAULT_MODEL, MODEL_ENV, LoadedModel, is_cross_encoder, load_model
from memreranker_core.backends.local.options import LocalOptions
from memreranker_core.backends.local.planning import CallPlan, default_pass_overhead, plan
from memreranker_core.backends.options import whole_number
from memreranker_core.errors import BackendError, ConfigurationError
from memreranker_core.prompt_tokens import PreparedCall
from memreranker_core.types import ScoreRequest

__all__ = ["DEFAULT_MODEL", "MODEL_ENV", "LocalBackend"]


class LocalBackend:
    """Scores with a local Qwen3-Reranker-style causal LM.

    Args:
        model: Hub id, local path, or a loaded sentence-transformers ``CrossEncoder`` whose model and tokenizer
            are reused. Default: ``MEMRERANKER_MODEL``, else ``IAAR-Shanghai/MemReranker-4B``.
        options: The validated ``LocalOptions``; or give the options as keywords instead (``device="cpu"``, ...).
            ``device``: ``"cuda"``, ``"cuda:1"``, ``"cpu"``...; default CUDA if available, else CPU.
            ``dtype``: ``"float32"``, ``"bfloat16"`` or ``"float16"``; default bfloat16 on CUDA, float32 on CPU.
            ``max_length``: Most tokens of one prompt (default 8192); only a document's tail is cut to fit.
            ``batch_tokens``: Most padded document tokens per forward pass (default: 32768 on CUDA, halved on GPUs
            under 40 GiB and again under 16 GiB; 512 on CPU). If a batch runs out of memory the budget is halved
            and the batch retried (logged once); no score is lost or changed.
            ``attn_implementation``: transformers attention implementation (default ``"sdpa"``;
            ``"flash_attention_2"`` needs ``flash-attn``). Ignored for a ``CrossEncoder``, which keeps its own.
            ``revision``, ``cache_dir``, ``local_files_only``, ``token``: passed to ``from_pretrained``.

    With a ``CrossEncoder``, its model is used where it is: ``device`` and ``dtype`` default to the model's own,
    and giving other values moves or casts the encoder's model in place.

    Besides the ``ScoringBackend`` protocol (``score``, ``warm_up``, ``close``, ``describe``), a local backend
    shows how it runs a call, for checks, benchmarks and tuning: ``loaded`` (the ``LoadedModel``), ``prepare``
    (a request's token ids), ``plan`` (prefix sharing and batches), ``budget`` (the ``TokenBudget`` in force) and
    ``set_budget`` (change it). The forward passes themselves are ``forward.run_prefix`` and ``forward.run_batch``.

    Example:
        >>> from memreranker_core import MemReranker
        >>> rr = MemReranker(backend="local", model="/models/MemReranker-0.6B", device="cpu")  # doctest: +SKIP
        >>> rr.backend.plan(ScoreRequest("When?", ("a memory", "another"), "Find memories")).passes  # doctest: +SKIP
        1
    """

    def __init__(self, model: Any = None, *, options: LocalOptions | None = None, **given: Any) -> None:
        if model is None:
            model = os.environ.get(MODEL_ENV) or DEFAULT_MODEL
        if isinstance(model, os.PathLike):
            model = os.fspath(model)
        if isinstance(model, str) and not model.strip():
            raise ConfigurationError("model is empty; give a hub id, a local path or a CrossEncoder")
        if not isinstance(model, str) and not is_cross_encoder(model):
            raise ConfigurationError(
                f"model must be a hub id, a local path or a sentence-transformers CrossEncoder, "
                f"not {type(model).__name__}"
            )
        if options is not None and given:
            raise ConfigurationError("pass either options= or option keywords, not both")
        self.options = options if options is not None else LocalOptions.from_given(given)
        self.model_ref = model
        self._budget: TokenBudget | None = None
        self._lock = threading.RLock()
        self._loaded: LoadedModel | None = None

    # ----------------------------------------------------------------- protocol
    def describe(self) -> dict[str, Any]:
        model = self.model_ref if isinstance(self.model_ref, str) else type(self.model_ref).__name__
        shown = {"model": model, **self.options.describe()}
        if self._budget is not None:  # the budget in force, after any out-of-memory reduction
            shown["batch_tokens"] = self._budget.value
        return shown

    def warm_up(self) -> None:
        self._load()

    def close(self) -> None:
        with self._lock:
            self._loaded = None
            self._budget = None

    def score(self, request: ScoreRequest) -> list[float]:
        """Log-odds per document: the shared prefix once (when that pays), then documents in budgeted batches."""
        import torch

        with self._lock:
            loaded, budget = self._load(), self.budget
            call_plan = plan(self._prepare(loaded, request), budget)
            sequences = call_plan.sequences
            with torch.inference_mode():
                prefix = run_prefix(loaded, call_plan.call.shared) if call_plan.shares_prefix else None
                try:
                    return run_in_budget(
                        [len(seq) for seq in sequences],
                        budget,
                        lambda batch: run_batch(loaded, [sequences[i] for i in batch], prefix),
                        on_oom=lambda: _free_cached_memory(loaded.device),
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

    # ----------------------------------------------------------------- how a call runs
    def prepare(self, request: ScoreRequest) -> PreparedCall:
        """The token ids this backend would run for ``request``: the shared prefix and each document's rows."""
        with self._lock:
            return self._prepare(self._load(), request)

    def plan(self, request: ScoreRequest) -> CallPlan:
        """How this backend would run ``request`` now: prefix sharing, batches, passes."""
        with self._lock:
            return plan(self._prepare(self._load(), request), self.budget)

    @property
    def loaded(self) -> LoadedModel:
        """The loaded model (``LoadedModel``: model, tokenizer, encoder, head, device), loading it if needed."""
        return self._load()

    @property
    def budget(self) -> TokenBudget:
        """The token budget in force (after any out-of-memory reductions), loading the model first if needed.

        Read it; change it with ``set_budget``.
        """
        with self._lock:
            loaded = self._load()
            if self._budget is None:
                self._budget = TokenBudget(
                    self.options.batch_tokens or default_batch_tokens(loaded.device),
                    pass_overhead=default_pass_overhead(loaded.device, loaded.model.config),
                )
            return self._budget

    def set_budget(self, batch_tokens: int | None = None, *, pass_overhead: int | None = None) -> TokenBudget:
        """Replace the budget in force for later calls (budget sweeps, tuning); ``None`` keeps that part.

        Args:
            batch_tokens: Most padded document tokens per forward pass.
            pass_overhead: The price of one more forward pass, in tokens, that the planner weighs against padding
                (0: padding is all that counts; very large: as few passes as possible, no shared-prefix pass).

        Returns:
            The new budget.

        Raises:
            ConfigurationError: A value that is not a whole number (``batch_tokens`` >= 1, ``pass_overhead`` >= 0).
        """
        with self._lock:
            current = self.budget
            self._budget = TokenBudget(
                current.value if batch_tokens is None else whole_number("batch_tokens", batch_tokens, 1),
                pass_overhead=(
                    current.pass_overhead if pass_overhead is None else whole_number("pass_overhead", pass_overhead, 0)
                ),
            )
            return self._budget

    # ----------------------------------------------------------------- internals
    def _prepare(self, loaded: LoadedModel, request: ScoreRequest) -> PreparedCall:
        return loaded.encoder.prepare(
            request, default_instruction=loaded.default_instruction, max_length=self.options.max_length
        )

    def _load(self) -> LoadedModel:
        with self._lock:
            if self._loaded is None:
                self._loaded = load_model(self.model_ref, self.options)
            return self._loaded


def _free_cached_memory(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
