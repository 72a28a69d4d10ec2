"""Haystack integration of MemReranker: ``MemRerankerRanker``, a document ranker component.

Example:
    >>> from haystack_integrations.components.rankers.memreranker import MemRerankerRanker
    >>> ranker = MemRerankerRanker(backend="hosted", top_k=5)  # or backend="local"
"""

from haystack_integrations.components.rankers.memreranker.ranker import MemRerankerRanker

__all__ = ["MemRerankerRanker"]
