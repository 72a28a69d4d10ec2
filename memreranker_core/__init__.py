"""memreranker_core: MemReranker scoring for agent memory, local (torch) or hosted (the Memos Rerank API).

Importing this package loads only the standard library; torch, transformers and requests load when a backend
first needs them.

Example:
    >>> from memreranker_core import MemReranker
    >>> rr = MemReranker(backend="hosted")  # or "local"
"""

from memreranker_core import errors
from memreranker_core.errors import MemRerankerError
from memreranker_core.reranker import MemReranker
from memreranker_core.types import RerankResult

__version__ = "0.1.0"

__all__ = ["MemReranker", "MemRerankerError", "RerankResult", "__version__", "errors"]
