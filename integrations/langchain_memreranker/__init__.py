"""LangChain integration of MemReranker: ``MemRerankerCompressor``, a document compressor that reranks.

Example:
    >>> from langchain_memreranker import MemRerankerCompressor
    >>> compressor = MemRerankerCompressor(backend="hosted", top_n=3)  # or backend="local"
"""

from langchain_memreranker.compressor import MemRerankerCompressor

__all__ = ["MemRerankerCompressor"]
