"""What a checkpoint says about itself: the default instruction a sentence-transformers checkpoint carries, and
the one rule that turns "the model's default" (``ScoreRequest.instruction is None``) into an instruction.

Used by the local backend (for the model it loads) and by the hosted backend's exact mode (for the tokenizer's
checkpoint), so both put the same ``<Instruct>`` line in front of a call that gives none. Imports nothing heavy:
``huggingface_hub`` is imported, when installed, only to look in the hub cache.

Example:
    >>> read_default_instruction("/nonexistent/checkpoint") is None
    True
    >>> resolve_instruction(None, read_default_instruction("/nonexistent/checkpoint")) == DEFAULT_INSTRUCTION
    True
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from memreranker_core.prompt import DEFAULT_INSTRUCTION

logger = logging.getLogger(__name__)


def resolve_instruction(given: str | None, model_default: str | None = None) -> str:
    """The ``<Instruct>`` line of a call: ``given``, else the model's default.

    The model's default is ``model_default`` (what the checkpoint carries: ``read_default_instruction``), else
    Qwen3-Reranker's ``DEFAULT_INSTRUCTION``. Every backend resolves ``ScoreRequest.instruction`` here, so
    ``None`` has one meaning everywhere.

    Args:
        given: The call's instruction (``ScoreRequest.instruction``); ``None`` for the model's default.
        model_default: The instruction the scoring model's checkpoint carries, if known; blank counts as none.

    Example:
        >>> resolve_instruction("Find the memory that answers the question", "Retrieve memories")
        'Find the memory that answers the question'
        >>> resolve_instruction(None, "Retrieve memories")
        'Retrieve memories'
        >>> resolve_instruction(None) == DEFAULT_INSTRUCTION
        True
    """
    if given is not None:
        return given
    if model_default is not None and model_default.strip():
        return model_default
    return DEFAULT_INSTRUCTION


def read_default_instruction(ref: str, *, cache_dir: str | None = None, revision: str | None = None) -> str | None:
    """The instruction a sentence-transformers checkpoint carries (``prompts[default_prompt_name]``), if any.

    Reads ``config_sentence_transformers.json`` from a local folder, or from the hub cache for a hub id (in
    ``cache_dir``, at ``revision``; never downloading it just for this).
    """
    path = Path(ref) / "config_sentence_transformers.json"
    if not path.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(
                ref, "config_sentence_transformers.json", cache_dir=cache_dir, revision=revision
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
