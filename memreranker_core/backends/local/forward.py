"""The local backend's forward passes: the shared prefix once, then right-padded rows read at their last token.

These two steps are the public, documented way to run the model as the backend does (benchmarks time them):

* ``run_prefix(loaded, ids)`` runs a call's shared prefix once and returns its ``PrefixCache``;
* ``run_batch(loaded, sequences, prefix)`` runs right-padded rows (against ``prefix``, or as whole prompts when
  ``prefix`` is None) and returns each row's log-odds, read at its last real token with the fp32 vector
  ``W[yes] - W[no]``: no vocabulary-wide projection anywhere.

No attention mask is needed: the prefix is all real tokens and padding only ever follows a row's real tokens, so
the causal mask alone keeps every real token from seeing padding. Call both under ``torch.inference_mode()``.

Example:
    >>> import torch  # doctest: +SKIP
    >>> loaded = LocalBackend("/models/MemReranker-0.6B", device="cpu").loaded  # doctest: +SKIP
    >>> call = LocalBackend("/models/MemReranker-0.6B", device="cpu").prepare(request)  # doctest: +SKIP
    >>> with torch.inference_mode():  # doctest: +SKIP
    ...     prefix = run_prefix(loaded, call.shared)
    ...     log_odds = run_batch(loaded, call.sequences, prefix)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from memreranker_core.backends.local.cache import PrefixCache
from memreranker_core.backends.local.loading import LoadedModel

__all__ = ["run_batch", "run_prefix"]


def run_prefix(loaded: LoadedModel, ids: Sequence[int]) -> PrefixCache:
    """Run a call's shared prefix once (batch size 1); return each layer's keys and values."""
    input_ids = torch.tensor([list(ids)], device=loaded.device)
    output = loaded.model.model(input_ids=input_ids, use_cache=True)
    cache = output.cache if getattr(output, "cache", None) is not None else output.past_key_values
    return PrefixCache(layers=tuple((layer.keys, layer.values) for layer in cache.layers), length=len(ids))


def run_batch(
    loaded: LoadedModel, sequences: Sequence[Sequence[int]], prefix: PrefixCache | None = None
) -> list[float]:
    """Log-odds ``logit(yes) - logit(no)`` of each row, right-padded into one forward pass.

    Args:
        loaded: The loaded model.
        sequences: Token ids per row: documents after ``prefix``, or whole prompts when ``prefix`` is None.
        prefix: The shared prefix's cache (``run_prefix``), whose length is each row's first position.

    Returns:
        One value per row, in order.
    """
    offset = prefix.length if prefix is not None else 0
    count, width = len(sequences), max(len(seq) for seq in sequences)
    rows = [list(seq) + [loaded.pad_id] * (width - len(seq)) for seq in sequences]
    input_ids = torch.tensor(rows, dtype=torch.long, device=loaded.device)
    positions = torch.arange(offset, offset + width, device=loaded.device).unsqueeze(0).expand(count, -1)
    output = loaded.model.model(
        input_ids=input_ids,
        position_ids=positions,
        use_cache=prefix is not None,
        **({} if prefix is None else {loaded.cache_kwarg: prefix.for_rows(count)}),
    )
    last = torch.tensor([len(seq) - 1 for seq in sequences], device=loaded.device)
    hidden = output.last_hidden_state[torch.arange(count, device=loaded.device), last]
    return (hidden.float() @ loaded.head).tolist()
