"""``LocalBackend``: MemReranker on your own CPU or GPU with torch + transformers.

How it gets its speed (scores stay equal to the model card's transformers recipe):

1. The shared prefix of a call (system prompt, instruction, context, query, up to ``<Document>:``) is run once
   and its key/value cache reused by every document, when that saves more than the extra forward pass costs;
   otherwise (one document, or a few on a GPU, where small passes are launch-bound) each whole prompt runs alone.
2. Documents (``" " + document`` + suffix) run against that cache in length-sorted batches bounded by a token
   budget (``batch_tokens``), right-padded; the batches are cut where padding would cost more than one more
   pass. Both choices are one plan per call (``planning.plan``), and that plan is what runs.
3. Only each document's last real token is read, and scored with one fp32 vector ``W[yes] - W[no]``: no
   vocabulary-wide projection anywhere (``forward``).
4. The prefix cache is shared by broadcasting, never copied per document or kept per layer, and padding needs no
   attention mask (it only ever follows a row's real tokens), so memory is bounded by the token budget
   (``cache``).
5. A batch that runs out of memory halves the budget and the rest is planned again (logged once); see ``budget``.

Concurrent calls on one backend (and on copies of a ``MemReranker``, which share it) run one after another, in
arrival order (``gate``): each call has the whole model while it runs, and a caller waits for every call that
arrived before it. A call that is cancelled (an ``ascore``/``arerank`` task cancelled, or timed out by
``asyncio.wait_for``) or closed stops at its next batch boundary and hands the model to the next caller.

Constructing a backend imports no torch: the model, and with it torch (``runner``), loads on first use.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any

from memreranker_core._optional import require
from memreranker_core.backends.local.gate import ModelGate
from memreranker_core.backends.local.options import LocalOptions
from memreranker_core.backends.local.planning import CallPlan, TokenBudget, plan
from memreranker_core.backends.local.reference import DEFAULT_MODEL, MODEL_ENV, model_reference
from memreranker_core.backends.options import whole_number
from memreranker_core.cancellation import current_scope
from memreranker_core.errors import ConfigurationError
from memreranker_core.prompt_tokens import PreparedCall
from memreranker_core.types import ScoreRequest

if TYPE_CHECKING:
    from memreranker_core.backends.local.loading import LoadedModel
    from memreranker_core.backends.local.runner import ModelRunner

__all__ = ["DEFAULT_MODEL", "MODEL_ENV", "LocalBackend"]


class LocalBackend:
    """Scores with a local Qwen3-Reranker-style causal LM.

    Args:
        model: Hub id, local path, or a loaded sentence-transformers ``CrossEncoder`` whose model and tokenizer
            are reused. Default: ``MEMRERANKER_MODEL``, else ``IAAR-Shanghai/MemReranker-4B``.
        options: The validated ``LocalOptions`` (every option, its default and meaning is declared there, once);
            or give the options as keywords instead (``device="cpu"``, ...).

    With a ``CrossEncoder``, its model is used where it is: ``device`` and ``dtype`` default to the model's own,
    and giving other values moves or casts the encoder's model in place.

    Calls run one at a time, in arrival order; a cancelled or closed call stops at its next batch boundary (see
    the module's docstring). ``close()`` stops the calls queued and releases the model; a later call loads it
    again.

    Besides the ``ScoringBackend`` protocol (``score``, ``warm_up``, ``close``, ``describe``), a local backend
    shows how it runs a call, for checks, benchmarks and tuning: ``loaded`` (the ``LoadedModel``), ``prepare``
    (a request's token ids), ``plan`` (the one plan a call runs: prefix sharing and batches), ``budget`` (the
    ``TokenBudget`` in force) and ``set_budget`` (change it). The forward passes themselves are
    ``forward.run_prefix`` and ``forward.run_batch``.

    Example:
        >>> from memreranker_core import MemReranker
        >>> rr = MemReranker(backend="local", model="/models/MemReranker-0.6B", device="cpu")  # doctest: +SKIP
        >>> rr.backend.plan(ScoreRequest("When?", ("a memory", "another"), "Find memories")).passes  # doctest: +SKIP
        1
    """

    def __init__(self, model: Any = None, *, options: LocalOptions | None = None, **given: Any) -> None:
        if options is not None and given:
            raise ConfigurationError("pass either options= or option keywords, not both")
        self.model_ref = model_reference(model)
        self.options = options if options is not None else LocalOptions.from_given(given)
        self._gate = ModelGate()
        self._load_lock = threading.Lock()
        self._runner: ModelRunner | None = None
        self._budget: TokenBudget | None = None

    # ----------------------------------------------------------------- protocol
    def describe(self) -> dict[str, Any]:
        model = self.model_ref if isinstance(self.model_ref, str) else type(self.model_ref).__name__
        shown = {"model": model, **self.options.describe()}
        budget = self._budget
        if budget is not None:  # the budget in force, after any out-of-memory reduction
            shown["batch_tokens"] = budget.value
        return shown

    def warm_up(self) -> None:
        self._loaded_runner()

    def close(self) -> None:
        """Stop every call queued (waiting ones at once, the running one at its next batch boundary) and release
        the model once the running call has stopped."""
        with self._gate.closing():
            self._runner = None
            self._budget = None

    def score(self, request: ScoreRequest) -> list[float]:
        """Log-odds per document: the call's one plan (``plan``), run on the model in this call's turn.

        Raises:
            CallCancelledError: The call was cancelled (its async caller) or closed, while it waited for the model
                or between two of its forward passes.
        """
        with self._gate.turn(current_scope()) as call:
            runner = self._loaded_runner()
            call_plan = plan(self._prepare(runner, request), self._budget_in_force(runner))
            return runner.run(call_plan, check=call.check, keep_budget=self._keep_budget).values

    # ----------------------------------------------------------------- how a call runs
    def prepare(self, request: ScoreRequest) -> PreparedCall:
        """The token ids this backend would run for ``request``: the shared prefix and each document's rows."""
        return self._prepare(self._loaded_runner(), request)

    def plan(self, request: ScoreRequest) -> CallPlan:
        """The plan ``score`` would run for ``request`` now (the same function, the same budget): prefix sharing,
        batches, passes."""
        runner = self._loaded_runner()
        return plan(self._prepare(runner, request), self._budget_in_force(runner))

    @property
    def waiting(self) -> int:
        """How many calls wait for the model now, behind the one running (0 when it is free or one call runs)."""
        return self._gate.waiting

    @property
    def loaded(self) -> LoadedModel:
        """The loaded model (``LoadedModel``: model, tokenizer, encoder, head, device), loading it if needed."""
        return self._loaded_runner().loaded

    @property
    def budget(self) -> TokenBudget:
        """The token budget in force (after any out-of-memory reductions), loading the model first if needed.

        Read it; change it with ``set_budget``.
        """
        return self._budget_in_force(self._loaded_runner())

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
        changes: dict[str, int] = {}
        if batch_tokens is not None:
            changes["value"] = whole_number("batch_tokens", batch_tokens, 1)
        if pass_overhead is not None:
            changes["pass_overhead"] = whole_number("pass_overhead", pass_overhead, 0)
        with self._gate.turn(current_scope()):  # after the calls already queued, which plan with the old one
            self._budget = dataclasses.replace(self._budget_in_force(self._loaded_runner()), **changes)
            return self._budget

    # ----------------------------------------------------------------- internals
    def _prepare(self, runner: ModelRunner, request: ScoreRequest) -> PreparedCall:
        loaded = runner.loaded
        return loaded.encoder.prepare(
            request, default_instruction=loaded.default_instruction, max_length=self.options.max_length
        )

    def _budget_in_force(self, runner: ModelRunner) -> TokenBudget:
        budget = self._budget
        if budget is None:
            budget = self._budget = runner.default_budget()
        return budget

    def _keep_budget(self, budget: TokenBudget) -> None:
        self._budget = budget

    def _loaded_runner(self) -> ModelRunner:
        """The model, loaded on first use. Importing ``runner`` here is the backend's one import of torch."""
        with self._load_lock:
            if self._runner is None:
                require("torch", extra="local", purpose="The local backend")
                require("transformers", extra="local", purpose="The local backend")
                from memreranker_core.backends.local.runner import ModelRunner

                self._runner = ModelRunner.load(self.model_ref, self.options)
            return self._runner
