"""Local backend: MemReranker on your own CPU or GPU with torch + transformers.

How it gets its speed (scores stay equal to the model card's transformers recipe):

1. The shared prefix of a call (system prompt, instruction, context, query, up to ``<Document>:``) is run once
   and its key/value cache reused by every document, when that saves more than the extra forward pass costs;
   otherwise (one document, or a few on a GPU, where small passes are launch-bound) each whole prompt runs alone.
2. Documents (``" " + document`` + suffix) run against that cache in length-sorted batches bounded by a token
   budget (``batch_tokens``), right-padded; the batches are cut where padding would cost more than one more
   pass (``local_batching.plan_batches``, with a per-device pass cost).
3. Only each document's last real token is read, and scored with one fp32 vector ``W[yes] - W[no]``: no
   vocabulary-wide projection anywhere.
4. The prefix cache is shared by broadcasting, never copied per document or kept per layer, and padding needs no
   attention mask (it only ever follows a row's real tokens), so memory is bounded by the token budget.
5. A batch that runs out of memory halves the budget and is retried (logged once); see ``local_batching``.

torch and transformers are imported when the model loads, not when this module is imported.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memreranker_core._optional import require
from memreranker_core.backends.local.batching import (
    DEFAULT_BATCH_TOKENS,
    TokenBudget,
    default_batch_tokens,
    default_pass_overhead,
    is_out_of_memory,
    plan_batches,
    run_in_budget,
    share_prefix,
    shared_prefix_cache,
)
from memreranker_core.backends.local.options import LocalOptions
from memreranker_core.errors import BackendError, ConfigurationError, InvalidInputError, ModelLoadError
from memreranker_core.prompt import DEFAULT_INSTRUCTION, NO_TOKEN, SUFFIX, SYSTEM_PREFIX, YES_TOKEN, body_head
from memreranker_core.types import ScoreRequest

logger = logging.getLogger(__name__)

MODEL_ENV = "MEMRERANKER_MODEL"
DEFAULT_MODEL = "IAAR-Shanghai/MemReranker-4B"

__all__ = [
    "DEFAULT_BATCH_TOKENS",
    "CallPlan",
    "LoadedModel",
    "LocalBackend",
    "PreparedCall",
    "plan",
    "plan_batches",
    "prepare",
]


@dataclass(frozen=True)
class LoadedModel:
    """What scoring needs once the model is loaded."""

    model: Any  # transformers *ForCausalLM
    tokenizer: Any
    head: Any  # fp32 tensor [hidden]: W[yes] - W[no]
    device: Any
    default_instruction: str
    prefix_ids: tuple[int, ...]
    suffix_ids: tuple[int, ...]
    pad_id: int
    cache_kwarg: str = "past_key_values"  # the backbone's cache argument ("cache" from transformers 5.24)


class LocalBackend:
    """Scores with a local Qwen3-Reranker-style causal LM.

    Args:
        model: Hub id, local path, or a loaded sentence-transformers ``CrossEncoder`` whose model and tokenizer
            are reused. Default: ``MEMRERANKER_MODEL``, else ``IAAR-Shanghai/MemReranker-4B``.
        device: ``"cuda"``, ``"cuda:1"``, ``"cpu"``...; default CUDA if available, else CPU.
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"``; default bfloat16 on CUDA, float32 on CPU.
        max_length: Most tokens of one prompt (default 8192); only a document's tail is cut to fit.
        batch_tokens: Most padded document tokens per forward pass (default: 32768 on CUDA, halved on GPUs under
            40 GiB and again under 16 GiB; 512 on CPU). If a batch runs out of memory the budget is halved and
            the batch retried (logged once); no score is lost or changed.
        attn_implementation: transformers attention implementation (default ``"sdpa"``; ``"flash_attention_2"``
            needs the ``flash-attn`` package). Ignored for a ``CrossEncoder``, which keeps its own.

    With a ``CrossEncoder``, its model is used where it is: ``device`` and ``dtype`` default to the model's own,
    and giving other values moves or casts the encoder's model in place.

    Example:
        >>> from memreranker_core import MemReranker
        >>> rr = MemReranker(backend="local", model="/models/MemReranker-0.6B", device="cpu")  # doctest: +SKIP
    """

    def __init__(self, model: Any = None, *, options: LocalOptions | None = None, **given: Any) -> None:
        if model is None:
            model = os.environ.get(MODEL_ENV) or DEFAULT_MODEL
        if isinstance(model, os.PathLike):
            model = os.fspath(model)
        if isinstance(model, str) and not model.strip():
            raise ConfigurationError("model is empty; give a hub id, a local path or a CrossEncoder")
        if not isinstance(model, str) and not _is_cross_encoder(model):
            raise ConfigurationError(
                f"model must be a hub id, a local path or a sentence-transformers CrossEncoder, "
                f"not {type(model).__name__}"
            )
        if options is not None and given:
            raise ConfigurationError("pass either options= or option keywords, not both")
        self.options = options if options is not None else LocalOptions.from_given(given)
        self.model_ref = model
        self.device_name = self.options.device
        self.dtype_name = self.options.dtype
        self.max_length = self.options.max_length
        self.batch_tokens = self.options.batch_tokens
        self.attn_implementation = self.options.attn_implementation
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
        with self._lock:
            loaded = self._load()
            return _score(loaded, request, self.max_length, self.budget)

    def prepare(self, request: ScoreRequest) -> PreparedCall:
        """The token ids this backend would run for ``request`` (for checks and benchmarks)."""
        with self._lock:
            return prepare(self._load(), request, self.max_length)

    def plan(self, request: ScoreRequest) -> CallPlan:
        """How this backend would run ``request`` now: prefix sharing, batches, passes (for checks and benchmarks)."""
        with self._lock:
            return plan(prepare(self._load(), request, self.max_length), self.budget)

    # ----------------------------------------------------------------- loading
    @property
    def loaded(self) -> LoadedModel:
        """The loaded model, loading it first if needed."""
        return self._load()

    @property
    def budget(self) -> TokenBudget:
        """The token budget in use (after any out-of-memory reductions), loading the model first if needed."""
        with self._lock:
            loaded = self._load()
            if self._budget is None:
                self._budget = TokenBudget(
                    self.batch_tokens or default_batch_tokens(loaded.device),
                    pass_overhead=default_pass_overhead(loaded.device, loaded.model.config),
                )
            return self._budget

    def _load(self) -> LoadedModel:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load_model()
            return self._loaded

    def _load_model(self) -> LoadedModel:
        torch = require("torch", extra="local", purpose="The local backend")
        require("transformers", extra="local", purpose="The local backend")
        if _is_cross_encoder(self.model_ref):
            model, tokenizer, instruction = _from_cross_encoder(self.model_ref)
            device = torch.device(self.device_name) if self.device_name else model.device
            dtype = getattr(torch, self.dtype_name) if self.dtype_name else model.dtype
            dtype_name = str(dtype).replace("torch.", "")
            if (model.device, model.dtype) != (device, dtype):
                model = model.to(device=device, dtype=dtype)
        else:
            device = torch.device(self.device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
            dtype_name = self.dtype_name or ("bfloat16" if device.type == "cuda" else "float32")
            dtype = getattr(torch, dtype_name)
            model, tokenizer = _from_pretrained(
                self.model_ref, dtype, self.attn_implementation, self.options.pretrained_kwargs()
            )
            model = model.to(device)
            instruction = read_default_instruction(self.model_ref, self.options)
        model.eval()
        yes_id, no_id = (_single_token_id(tokenizer, token) for token in (YES_TOKEN, NO_TOKEN))
        weight = model.get_output_embeddings().weight
        head = (weight[yes_id].detach().float() - weight[no_id].detach().float()).to(device)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        loaded = LoadedModel(
            model=model,
            tokenizer=tokenizer,
            head=head,
            device=device,
            default_instruction=instruction or DEFAULT_INSTRUCTION,
            prefix_ids=tuple(_encode(tokenizer, [SYSTEM_PREFIX], user_text=False)[0]),
            suffix_ids=tuple(_encode(tokenizer, [SUFFIX], user_text=False)[0]),
            pad_id=int(pad_id if pad_id is not None else 0),
            cache_kwarg=_cache_kwarg(model.model),
        )
        logger.info("Loaded %s on %s (%s)", self.describe()["model"], device, dtype_name)
        return loaded


# --------------------------------------------------------------------- scoring
@dataclass(frozen=True)
class PreparedCall:
    """One call's token ids: the shared prefix (system prompt to ``<Document>:``) and each document's tokens."""

    shared: list[int]
    sequences: list[list[int]]  # " " + document (tail-truncated to fit) + suffix, per document

    def pair_ids(self, index: int) -> list[int]:
        """The full prompt of document ``index``: exactly the card recipe's tokens for that pair."""
        return self.shared + self.sequences[index]


def prepare(loaded: LoadedModel, request: ScoreRequest, max_length: int) -> PreparedCall:
    """Tokenize one call: the shared prefix once, every document once."""
    instruction = request.instruction or loaded.default_instruction
    head_ids = _encode(loaded.tokenizer, [body_head(request.query, instruction, request.context)])[0]
    shared = list(loaded.prefix_ids) + head_ids
    room = max_length - len(shared) - len(loaded.suffix_ids)
    if room < 1:
        raise InvalidInputError(
            f"the query, instruction and context take {len(shared) + len(loaded.suffix_ids)} of max_length="
            f"{max_length} tokens, leaving no room for documents; shorten them or raise max_length"
        )
    doc_ids = _encode(loaded.tokenizer, [" " + text for text in request.documents])
    truncated = sum(len(ids) > room for ids in doc_ids)
    if truncated:
        logger.debug("%d document(s) cut to their first %d tokens (max_length=%d)", truncated, room, max_length)
    suffix = list(loaded.suffix_ids)
    return PreparedCall(shared=shared, sequences=[ids[:room] + suffix for ids in doc_ids])


@dataclass(frozen=True)
class CallPlan:
    """How one call runs: the shared prefix once and documents against it, or each whole prompt on its own.

    ``sequences`` are what the batch rows run (documents, or whole prompts), ``batches`` their indices per forward
    pass, as planned from the budget before any out-of-memory reduction.
    """

    call: PreparedCall
    shares_prefix: bool
    sequences: list[list[int]]
    batches: list[list[int]]

    @property
    def offset(self) -> int:
        """Tokens before each row's first one: the shared prefix's length, or 0 for whole prompts."""
        return len(self.call.shared) if self.shares_prefix else 0

    @property
    def passes(self) -> int:
        """Forward passes of the call, the prefix's included."""
        return len(self.batches) + self.shares_prefix

    @property
    def padded_tokens(self) -> int:
        """Tokens the passes run, padding and the shared prefix included."""
        rows = sum(len(batch) * max(len(self.sequences[i]) for i in batch) for batch in self.batches)
        return rows + self.offset


def plan(call: PreparedCall, budget: TokenBudget) -> CallPlan:
    """Choose between the shared prefix and whole prompts (``share_prefix``), then plan the batches."""
    if share_prefix(len(call.shared), [len(seq) for seq in call.sequences], budget):
        sequences = call.sequences
        shares = True
    else:  # one document, or too few to pay for a pass of its own over the prefix: whole prompts
        sequences = [call.pair_ids(i) for i in range(len(call.sequences))]
        shares = False
    batches = plan_batches([len(seq) for seq in sequences], budget.value, budget.pass_overhead)
    return CallPlan(call=call, shares_prefix=shares, sequences=sequences, batches=batches)


def _score(loaded: LoadedModel, request: ScoreRequest, max_length: int, budget: TokenBudget) -> list[float]:
    """Log-odds per document: the shared prefix once (when that pays), then documents in token-budgeted batches."""
    import torch

    call_plan = plan(prepare(loaded, request, max_length), budget)
    sequences, offset = call_plan.sequences, call_plan.offset
    with torch.inference_mode():
        prefix_cache = _run_prefix(loaded, call_plan.call.shared) if call_plan.shares_prefix else None
        try:
            return run_in_budget(
                [len(seq) for seq in sequences],
                budget,
                lambda batch: _run_batch(loaded, prefix_cache, offset, [sequences[i] for i in batch]),
                on_oom=lambda: _free_cached_memory(loaded.device),
            )
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            raise BackendError(
                f"out of memory even with one document per batch on {loaded.device}: a document of up to "
                f"{max(map(len, call_plan.call.sequences)) + len(call_plan.call.shared)} tokens does not fit; "
                f"lower max_length (now {max_length}) or free memory on the device"
            ) from exc


def _free_cached_memory(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()


def _run_prefix(loaded: LoadedModel, shared: list[int]) -> list[tuple[Any, Any]]:
    """Run the shared prefix once; return each layer's (keys, values), batch size 1."""
    import torch

    input_ids = torch.tensor([shared], device=loaded.device)
    output = loaded.model.model(input_ids=input_ids, use_cache=True)
    cache = output.cache if getattr(output, "cache", None) is not None else output.past_key_values
    return [(layer.keys, layer.values) for layer in cache.layers]


def _run_batch(
    loaded: LoadedModel, prefix: list[tuple[Any, Any]] | None, offset: int, seqs: list[list[int]]
) -> list[float]:
    """Run right-padded sequences (after the shared ``prefix`` of ``offset`` tokens, if any); read each last token.

    No attention mask is needed: the prefix is all real tokens and padding only ever follows a row's real
    tokens, so the causal mask alone keeps every real token from seeing padding.
    """
    import torch

    count, width = len(seqs), max(len(seq) for seq in seqs)
    rows = [seq + [loaded.pad_id] * (width - len(seq)) for seq in seqs]
    input_ids = torch.tensor(rows, dtype=torch.long, device=loaded.device)
    positions = torch.arange(offset, offset + width, device=loaded.device).unsqueeze(0).expand(count, -1)
    output = loaded.model.model(
        input_ids=input_ids,
        position_ids=positions,
        use_cache=prefix is not None,
        **({} if prefix is None else {loaded.cache_kwarg: shared_prefix_cache(prefix, count)}),
    )
    last = torch.tensor([len(seq) - 1 for seq in seqs], device=loaded.device)
    hidden = output.last_hidden_state[torch.arange(count, device=loaded.device), last]
    return (hidden.float() @ loaded.head).tolist()


def _encode(tokenizer: Any, texts: list[str], *, user_text: bool = True) -> list[list[int]]:
    """Token ids of ``texts``; user text is never parsed for special tokens (``<|im_end|>`` stays literal)."""
    encoded = tokenizer(texts, add_special_tokens=False, return_attention_mask=False, split_special_tokens=user_text)
    return [list(ids) for ids in encoded["input_ids"]]


# --------------------------------------------------------------------- loading helpers
def _cache_kwarg(backbone: Any) -> str:
    """The name under which ``backbone.forward`` takes a cache: ``cache`` (transformers >= 5.24) or the old one."""
    import inspect

    return "cache" if "cache" in inspect.signature(backbone.forward).parameters else "past_key_values"


def _single_token_id(tokenizer: Any, token: str) -> int:
    ids = tokenizer(token, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ModelLoadError(f"the tokenizer splits {token!r} into {len(ids)} tokens; is this a Qwen3 reranker?")
    return int(ids[0])


def _is_cross_encoder(obj: Any) -> bool:
    return type(obj).__name__ == "CrossEncoder" and type(obj).__module__.startswith("sentence_transformers")


def _from_cross_encoder(encoder: Any) -> tuple[Any, Any, str | None]:
    """Reuse the causal LM, tokenizer and default prompt of a loaded sentence-transformers ``CrossEncoder``."""
    first = encoder[0]
    model = getattr(first, "auto_model", None) or getattr(first, "model", None)
    tokenizer = getattr(first, "tokenizer", None) or getattr(encoder, "tokenizer", None)
    if model is None or tokenizer is None or model.get_output_embeddings() is None:
        raise ModelLoadError(
            "this CrossEncoder does not wrap a causal language model with a yes/no head (a Qwen3 reranker); "
            "load MemReranker with CrossEncoder('IAAR-Shanghai/MemReranker-4B') or pass the model's path instead"
        )
    prompts = getattr(encoder, "prompts", None) or {}
    instruction = prompts.get(getattr(encoder, "default_prompt_name", None) or "")
    return model, tokenizer, instruction or None


def _from_pretrained(ref: str, dtype: Any, attn_implementation: str, hub: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(ref, **hub)
        model = AutoModelForCausalLM.from_pretrained(
            ref, dtype=dtype, attn_implementation=attn_implementation, **hub
        )
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"could not load the model {ref!r}: {exc}\n"
            f"If this machine is offline or the model is not cached, either point {MODEL_ENV} (or model=) at a "
            "local copy of the checkpoint, or use the hosted backend: MemReranker(backend='hosted') with "
            "MEMOS_API_KEY set."
        ) from exc
    return model, tokenizer


def read_default_instruction(ref: str, options: LocalOptions | None = None) -> str | None:
    """The instruction a sentence-transformers checkpoint carries (``prompts[default_prompt_name]``), if any.

    Reads ``config_sentence_transformers.json`` from a local folder, or from the hub cache for a hub id (the
    ``revision`` and ``cache_dir`` of ``options``; never downloading it just for this).
    """
    hub = {} if options is None else options.pretrained_kwargs()
    path = Path(ref) / "config_sentence_transformers.json"
    if not path.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(
                ref,
                "config_sentence_transformers.json",
                cache_dir=hub.get("cache_dir"),
                revision=hub.get("revision"),
            )
        except Exception:  # not a hub id, or no huggingface_hub
            return None
        if not isinstance(cached, str):
            return None
        path = Path(cached)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("ignoring unreadable %s", path)
        return None
    prompts = config.get("prompts") or {}
    name = config.get("default_prompt_name")
    instruction = prompts.get(name) if name else None
    return instruction if isinstance(instruction, str) and instruction.strip() else None
