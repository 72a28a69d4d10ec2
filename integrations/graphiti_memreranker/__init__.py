"""MemReranker for Graphiti: a ``CrossEncoderClient`` for every ``*_CROSS_ENCODER`` search recipe.

Example:
    >>> from graphiti_core import Graphiti
    >>> from graphiti_memreranker import MemRerankerCrossEncoder
    >>> graphiti = Graphiti(graph_driver=driver, cross_encoder=MemRerankerCrossEncoder(backend="local"))
    ... # doctest: +SKIP
"""

from graphiti_memreranker.cross_encoder import MemRerankerCrossEncoder, fact_dates

__all__ = ["MemRerankerCrossEncoder", "fact_dates"]
