"""What a checkpoint says about itself: the default instruction a sentence-transformers checkpoint carries.

Used by the local backend (for the model it loads) and by the hosted backend's exact mode (for the tokenizer's
checkpoint), so both put the same ``<Instruct>`` line in front of a call that gives none. Standard library only;
``huggingface_hub`` is used, when installed, to look in the hub cache.

Example:
    >>> read_default_instruction("/nonexistent/checkpoint") is None
    True
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


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
