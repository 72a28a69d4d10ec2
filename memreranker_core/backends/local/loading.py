"""Loading the local model: from the hub or a folder (``from_pretrained``), or reusing a loaded ``CrossEncoder``.

``load_model(ref, options)`` returns a ``LoadedModel``: the causal LM on its device and dtype, its tokenizer, the
``PromptEncoder`` built on it, the fp32 scoring vector ``W[yes] - W[no]`` and the checkpoint's default
instruction. Every failure is typed: a device this torch cannot use is a ``ConfigurationError`` that says so, a
missing, unreachable or damaged checkpoint a ``ModelLoadError`` that names the fix.
"""

from __future__ import annotations

import inspect
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
from huggingface_hub import try_to_load_from_cache
from transformers import AutoModelForCausalLM, AutoTokenizer

from memreranker_core.backends.local.options import LocalOptions
from memreranker_core.backends.local.reference import MODEL_ENV, is_cross_encoder
from memreranker_core.backends.options import secret_text
from memreranker_core.checkpoint import read_default_instruction, resolve_instruction
from memreranker_core.errors import ConfigurationError, MemRerankerError, ModelLoadError
from memreranker_core.prompt_tokens import PromptEncoder

logger = logging.getLogger(__name__)

__all__ = ["LoadedModel", "load_model", "resolve_device", "warn_if_downloading"]


@dataclass(frozen=True)
class LoadedModel:
    """What scoring needs once the model is loaded.

    Attributes:
        model: The transformers ``*ForCausalLM`` (its backbone, ``model.model``, is what the passes run).
        tokenizer: Its tokenizer (a fast, ``tokenizers``-backed one).
        head: fp32 tensor ``[hidden]``: ``W[yes] - W[no]``, the log-odds of a last hidden state.
        device: The ``torch.device`` the model runs on.
        default_instruction: The instruction of a call that gives none (the checkpoint's own, else the card's).
        encoder: The ``PromptEncoder`` that turns requests into prompt token ids.
        pad_id: The id right padding uses (never attended to by a real token).
        cache_kwarg: The backbone's cache argument (``cache`` from transformers 5.24, else ``past_key_values``).
    """

    model: Any
    tokenizer: Any
    head: torch.Tensor
    device: torch.device
    default_instruction: str
    encoder: PromptEncoder
    pad_id: int
    cache_kwarg: str = "past_key_values"


def load_model(ref: Any, options: LocalOptions) -> LoadedModel:
    """Load ``ref`` (a hub id, a local path or a sentence-transformers ``CrossEncoder``) as ``options`` say.

    Raises:
        ConfigurationError: The device is not one this torch can use (no CUDA build, no such GPU).
        ModelLoadError: The checkpoint cannot be found, downloaded or read, or is not a Qwen3 reranker.
    """
    if is_cross_encoder(ref):
        model, tokenizer, instruction = _from_cross_encoder(ref)
        device = resolve_device(options.device) if options.device else model.device
        dtype = getattr(torch, options.dtype) if options.dtype else model.dtype
        if (model.device, model.dtype) != (device, dtype):
            model = model.to(device=device, dtype=dtype)
        name = type(ref).__name__
    else:
        device = resolve_device(options.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = getattr(torch, options.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
        model, tokenizer = _from_pretrained(ref, dtype, options)
        model = model.to(device)
        hub = options.pretrained_kwargs()
        instruction = read_default_instruction(ref, cache_dir=hub.get("cache_dir"), revision=hub.get("revision"))
        name = ref
    model.eval()
    encoder = PromptEncoder(tokenizer)
    weight = model.get_output_embeddings().weight
    head = (weight[encoder.yes_id].detach().float() - weight[encoder.no_id].detach().float()).to(device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    logger.info("Loaded %s on %s (%s)", name, device, str(model.dtype).replace("torch.", ""))
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        head=head,
        device=device,
        default_instruction=resolve_instruction(None, instruction),
        encoder=encoder,
        pad_id=int(pad_id if pad_id is not None else 0),
        cache_kwarg=_cache_kwarg(model.model),
    )


def resolve_device(name: str) -> torch.device:
    """The ``torch.device`` for ``name``, checked against what this torch build and machine have.

    Raises:
        ConfigurationError: torch does not know the device, or it is not available here (a CPU-only torch asked
            for ``cuda``, a GPU index past the last one, ``mps`` off Apple silicon), with the fix.
    """
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"device={name!r} is not a device torch knows ({exc}); use 'cuda', 'cpu' or 'mps'"
        ) from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"a CUDA {torch.version.cuda} build"
            raise ConfigurationError(
                f"device={name!r}, but CUDA is not available: this torch ({torch.__version__}) is {build} and sees "
                "no GPU. Use device='cpu' (or leave device unset to pick CUDA only where it works), or install a "
                "CUDA build of torch (https://pytorch.org/get-started/locally/)"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigurationError(
                f"device={name!r}, but this machine has {count} CUDA device(s) (cuda:0 to cuda:{count - 1})"
            )
    elif device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigurationError(f"device={name!r}, but MPS (Apple silicon) is not available here; use device='cpu'")
    return device


def _cache_kwarg(backbone: Any) -> str:
    """The name under which ``backbone.forward`` takes a cache: ``cache`` (transformers >= 5.24) or the old one."""
    return "cache" if "cache" in inspect.signature(backbone.forward).parameters else "past_key_values"


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


def _from_pretrained(ref: str, dtype: torch.dtype, options: LocalOptions) -> tuple[Any, Any]:
    hub = options.pretrained_kwargs()
    warn_if_downloading(ref, options)
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref, **hub)
        model = AutoModelForCausalLM.from_pretrained(
            ref, dtype=dtype, attn_implementation=options.attn_implementation, **hub
        )
    except MemRerankerError:
        raise
    except (OSError, ValueError) as exc:  # not found, offline, not a causal LM, a bad revision
        raise ModelLoadError(
            f"could not load the model {ref!r}: {_without_token(exc, options)}\n"
            f"If this machine is offline or the model is not cached, either point {MODEL_ENV} (or model=) at a "
            "local copy of the checkpoint, or use the hosted backend: MemReranker(backend='hosted') with "
            "MEMOS_API_KEY set."
        ) from exc
    except Exception as exc:  # safetensors' and torch's own errors: a truncated or damaged weights file
        raise ModelLoadError(
            f"could not read the weights of {ref!r} ({type(exc).__name__}: {_without_token(exc, options)}): the "
            "checkpoint looks damaged or incomplete. Download it again (delete its folder in the hub cache, or "
            "pass a fresh local copy) and check the disk is not full."
        ) from exc
    return model, tokenizer


#: Approximate download sizes of the published checkpoints (parameters in bfloat16), for the first-call warning.
CHECKPOINT_SIZES = {"IAAR-Shanghai/MemReranker-4B": "about 8 GB", "IAAR-Shanghai/MemReranker-0.6B": "about 1.2 GB"}


def warn_if_downloading(ref: str, options: LocalOptions) -> bool:
    """Log one warning when ``ref`` is a hub id whose weights are not in the local cache (a download follows).

    Returns whether it warned. Never raises: this only informs.
    """
    if options.local_files_only or os.path.isdir(ref) or os.environ.get("HF_HUB_OFFLINE", "").strip() in ("1", "true"):
        return False
    try:
        cached = try_to_load_from_cache(ref, "config.json", cache_dir=options.cache_dir, revision=options.revision)
    except Exception:  # not a hub id: from_pretrained says what is wrong
        return False
    if isinstance(cached, str):
        return False
    size = CHECKPOINT_SIZES.get(ref, "the checkpoint")
    logger.warning(
        "downloading %s (%s) from the Hugging Face Hub on first use; point %s (or model=) at a local copy to skip "
        "this, or use IAAR-Shanghai/MemReranker-0.6B (about 1.2 GB)",
        ref,
        size,
        MODEL_ENV,
    )
    return True


def _without_token(exc: BaseException, options: LocalOptions) -> str:
    """``exc``'s message, cut to 500 characters, with the hub token (if any) redacted first."""
    message = str(exc)
    if options.token is not None:
        token = secret_text(options.token)
        if token:
            message = message.replace(token, "[redacted]")
    return message if len(message) <= 500 else message[:500] + "..."
