"""LlamaIndex integration of MemReranker: ``MemRerankerPostprocessor``, a reranking node postprocessor.

Example:
    >>> from llama_index.postprocessor.memreranker import MemRerankerPostprocessor
    >>> postprocessor = MemRerankerPostprocessor(backend="hosted", top_n=3)  # or backend="local"
"""

from llama_index.postprocessor.memreranker.base import MemRerankerPostprocessor

__all__ = ["MemRerankerPostprocessor"]
