"""MemReranker for mem0: a reranker provider for ``Memory.search(..., rerank=True)`` (sync and async).

Example:
    >>> from mem0 import Memory
    >>> from mem0_memreranker import register
    >>> register()  # once: mem0 has no plugin lookup for rerankers
    >>> memory = Memory.from_config({"reranker": {"provider": "memreranker", "config": {"backend": "local"}}})
    ... # doctest: +SKIP
"""

from mem0_memreranker.reranker import PROVIDER, MemRerankerMem0, MemRerankerMem0Config, register

__all__ = ["PROVIDER", "MemRerankerMem0", "MemRerankerMem0Config", "register"]
