"""Loading the served model's tokenizer for the hosted backend's ``tokenizer`` option, without torch.

``tokenizer`` names the tokenizer of the model the service runs: a ``tokenizer.json`` file, a model folder holding
one, or a Hugging Face hub id (downloaded once into the hub cache by ``huggingface_hub``, which honours
``HF_HUB_OFFLINE`` and ``HF_TOKEN``). Only the ``tokenizers`` package is needed (``pip install -e ".[vllm]"``);
a folder's ``config_sentence_transformers.json`` (or the hub cache's copy) also gives the checkpoint's default
instruction, the one the local backend uses for that model.

Example:
    >>> tokenizer = load_tokenizer("/models/MemReranker-0.6B")  # doctest: +SKIP
    >>> tokenizer.encode("yes", add_special_tokens=False).ids  # doctest: +SKIP
    [9693]
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from memreranker_core._optional import require
from memreranker_core.errors import ModelLoadError

logger = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
_PURPOSE = "The hosted backend's tokenizer option (exact token counts and the vLLM exact mode)"
_cache: dict[str, Any] = {}
_cache_lock = threading.Lock()


def load_tokenizer(ref: str) -> Any:
    """The ``tokenizers.Tokenizer`` named by ``ref`` (a file, a folder or a hub id); loaded once per process.

    Raises:
        MissingDependencyError: ``tokenizers`` is not installed (the ``vllm`` extra).
        ModelLoadError: ``ref`` names no readable tokenizer; the message says which forms are accepted.
    """
    with _cache_lock:
        if ref in _cache:
            return _cache[ref]
    tokenizers = require("tokenizers", extra="vllm", purpose=_PURPOSE)
    path = _tokenizer_file(ref)
    try:
        tokenizer = tokenizers.Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises plain Exception subclasses
        raise ModelLoadError(f"could not read the tokenizer {str(path)!r}: {exc}"[:500]) from None
    with _cache_lock:
        _cache.setdefault(ref, tokenizer)
        return _cache[ref]


def _tokenizer_file(ref: str) -> Path:
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        candidate = path / TOKENIZER_FILE
        if candidate.is_file():
            return candidate
        raise ModelLoadError(
            f"the folder {ref!r} has no {TOKENIZER_FILE}; pass the model folder the server loads, its "
            f"{TOKENIZER_FILE} file, or the model's hub id"
        )
    if ref.count("/") != 1 or ref.startswith(("/", ".", "~")):
        raise ModelLoadError(
            f"tokenizer {ref!r} is neither a file, a folder nor a hub id like 'IAAR-Shanghai/MemReranker-0.6B'"
        )
    return Path(_hub_file(ref, TOKENIZER_FILE))


def _hub_file(repo_id: str, filename: str) -> str:
    hub = require("huggingface_hub", extra="vllm", purpose=_PURPOSE)
    try:
        return hub.hf_hub_download(repo_id, filename)
    except Exception as exc:
        raise ModelLoadError(
            f"could not get {filename} of {repo_id!r} from the Hugging Face hub ({type(exc).__name__}); check the "
            "id and the network, or pass a local folder or tokenizer.json file"
        ) from None


def default_instruction(ref: str) -> str | None:
    """The instruction the checkpoint at ``ref`` carries (its ``config_sentence_transformers.json``), if any: the
    one the local backend uses for that model. For a ``tokenizer.json`` file, the file's folder is read; a hub id
    is read from the hub cache only (never downloaded just for this)."""
    from memreranker_core.checkpoint import read_default_instruction

    path = Path(ref).expanduser()
    return read_default_instruction(str(path.parent) if path.is_file() else ref)


__all__ = ["TOKENIZER_FILE", "default_instruction", "load_tokenizer"]
