"""The shared-prefix cache: one call's prefix keys and values, shown to every document row without a copy.

``PrefixCache`` holds what running the shared prefix once produced (each layer's keys and values, batch size 1).
``PrefixCache.for_rows`` turns it into a transformers ``Cache`` for a batch of ``rows`` documents: each layer's
keys and values are broadcast to the rows as a view, and a layer concatenates them with the batch's own keys and
values only inside its attention, then drops the result. Memory so holds one layer's concatenation at a time,
never a per-row or per-layer copy of the prefix.

Example:
    >>> prefix = PrefixCache(layers=((torch.zeros(1, 2, 5, 16), torch.zeros(1, 2, 5, 16)),), length=5)
    >>> prefix.for_rows(3).get_seq_length()
    5
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers.cache_utils import Cache, DynamicLayer

__all__ = ["PrefixCache", "SharedPrefixLayer", "shared_prefix_cache"]


class SharedPrefixLayer(DynamicLayer):
    """A read-only cache layer showing ``rows`` batch rows one prefix (a broadcast view, no copy).

    ``update`` returns the prefix's keys and values followed by the batch's own, for that layer's attention, and
    stores nothing: the concatenation is dropped when the layer is done.

    Args:
        keys: The prefix's keys, ``[1, kv_heads, length, head_dim]``.
        values: The prefix's values, the same shape.
        rows: Batch rows to show them to.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, rows: int) -> None:
        super().__init__()
        self.dtype, self.device = keys.dtype, keys.device
        self.keys = keys.expand(rows, -1, -1, -1)
        self.values = values.expand(rows, -1, -1, -1)
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The prefix followed by this batch's keys and values; nothing is stored."""
        return torch.cat([self.keys, key_states], dim=-2), torch.cat([self.values, value_states], dim=-2)


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

    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    length: int

    def for_rows(self, rows: int) -> Cache:
        """A read-only transformers ``Cache`` that shows every one of ``rows`` batch rows this prefix."""
        return shared_prefix_cache(self.layers, rows)


def shared_prefix_cache(prefix: Sequence[tuple[torch.Tensor, torch.Tensor]], rows: int) -> Cache:
    """A transformers ``Cache`` that shows every row the shared prefix's keys and values, without storing more.

    Each layer's prefix keys/values (batch size 1) are broadcast to ``rows`` as a view. During the forward pass a
    layer concatenates them with the batch's own keys/values for attention and then drops the result, so memory
    holds one layer's concatenation at a time instead of every layer's.
    """
    return Cache(layers=[SharedPrefixLayer(keys, values, rows) for keys, values in prefix])
