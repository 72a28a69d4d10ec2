"""The shared-prefix cache: one call's prefix keys and values, shown to every document row without a copy.

``PrefixCache`` holds what running the shared prefix once produced (each layer's keys and values, batch size 1).
``PrefixCache.for_rows`` turns it into a transformers ``Cache`` for a batch of ``rows`` documents: each layer's
keys and values are broadcast to the rows as a view, and a layer concatenates them with the batch's own keys and
values only inside its attention, then drops the result. Memory so holds one layer's concatenation at a time,
never a per-row or per-layer copy of the prefix.

transformers is imported when a ``Cache`` is built, not when this module is imported.

Example:
    >>> import torch  # doctest: +SKIP
    >>> prefix = PrefixCache(layers=((torch.zeros(1, 2, 5, 16), torch.zeros(1, 2, 5, 16)),), length=5)  # doctest: +SKIP
    >>> prefix.for_rows(3).get_seq_length()  # doctest: +SKIP
    5
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["PrefixCache", "shared_prefix_cache"]


@dataclass(frozen=True)
class PrefixCache:
    """The keys and values of a call's shared prefix, one ``(keys, values)`` pair per layer (batch size 1).

    Attributes:
        layers: Per decoder layer, the prefix's keys and values, each ``[1, kv_heads, length, head_dim]``.
        length: How many tokens the prefix has (the position of each document's first token).

    Example:
        >>> PrefixCache(layers=(), length=0).length
        0
    """

    layers: tuple[tuple[Any, Any], ...]
    length: int

    def for_rows(self, rows: int) -> Any:
        """A read-only transformers ``Cache`` that shows every one of ``rows`` batch rows this prefix."""
        return shared_prefix_cache(self.layers, rows)


def shared_prefix_cache(prefix: Sequence[tuple[Any, Any]], rows: int) -> Any:
    """A transformers ``Cache`` that shows every row the shared prefix's keys and values, without storing more.

    Each layer's prefix keys/values (batch size 1) are broadcast to ``rows`` as a view. During the forward pass a
    layer concatenates them with the batch's own keys/values for attention and then drops the result, so memory
    holds one layer's concatenation at a time instead of every layer's.
    """
    from transformers.cache_utils import Cache

    return Cache(layers=[_prefix_layer(keys, values, rows) for keys, values in prefix])


def _shared_prefix_layer_class() -> type:
    from transformers.cache_utils import DynamicLayer

    class SharedPrefixLayer(DynamicLayer):
        """A read-only cache layer holding a broadcast prefix; ``update`` returns prefix + new, stores nothing."""

        def __init__(self, keys: Any, values: Any, rows: int) -> None:
            super().__init__()
            self.dtype, self.device = keys.dtype, keys.device
            self.keys = keys.expand(rows, -1, -1, -1)
            self.values = values.expand(rows, -1, -1, -1)
            self.is_initialized = True

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            import torch

            return torch.cat([self.keys, key_states], dim=-2), torch.cat([self.values, value_states], dim=-2)

    return SharedPrefixLayer


def _prefix_layer(keys: Any, values: Any, rows: int) -> Any:
    """A ``SharedPrefixLayer`` (the class is defined on first use, so that transformers loads lazily)."""
    global _LAYER_CLASS
    if _LAYER_CLASS is None:
        _LAYER_CLASS = _shared_prefix_layer_class()
    return _LAYER_CLASS(keys, values, rows)


_LAYER_CLASS: type | None = None
