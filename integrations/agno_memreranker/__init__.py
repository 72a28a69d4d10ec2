"""MemReranker for Agno: a reranker for ``Knowledge(vector_db=..., reranker=...)`` (sync and async search).

Example:
    >>> from agno_memreranker import MemRerankerAgno
    >>> reranker = MemRerankerAgno(backend="hosted", metadata_fields=["date", "speaker"])
    >>> reranker.search_limit(10)  # Knowledge asks the vector db for this many candidates, then keeps 10
    30
"""

from agno_memreranker.reranker import MemRerankerAgno

__all__ = ["MemRerankerAgno"]
