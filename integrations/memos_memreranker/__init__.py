"""MemReranker for MemOS: a ``BaseReranker`` for the tree text memory's searcher.

Example:
    >>> from memos_memreranker import MemRerankerMemOS
    >>> tree_memory.reranker = MemRerankerMemOS(backend="local")  # every later search uses it  # doctest: +SKIP
"""

from memos_memreranker.reranker import MemRerankerMemOS

__all__ = ["MemRerankerMemOS"]
