"""The backend options as typed keywords of ``MemReranker(...)``, for editors and type checkers.

``LocalKeywords`` and ``HostedKeywords`` hold one key per field of ``LocalOptions`` and ``HostedOptions``, typed as
the option accepts it (``None`` always: "not given"); ``OptionKeywords`` is both, since ``MemReranker`` accepts the
other backend's options too (ignored, so switching backends stays one argument). ``MemReranker.__init__`` takes
``**options: Unpack[OptionKeywords]``. The options dataclasses stay the one declaration: a test
(``tests/unit/test_typed_surface.py``) fails when a key is missing, extra, or typed narrower than its field.

Standard library only, and nothing is imported from a backend, so importing this stays free.

Example:
    >>> sorted(LocalKeywords.__annotations__)[:3]
    ['attn_implementation', 'batch_tokens', 'cache_dir']
    >>> "read_timeout" in OptionKeywords.__annotations__ and "device" in OptionKeywords.__annotations__
    True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypedDict


class LocalKeywords(TypedDict, total=False):
    """The local backend's options (``LocalOptions``) as ``MemReranker`` keywords.

    Example:
        >>> options: LocalKeywords = {"device": "cpu", "max_length": 4096}
        >>> options["device"]
        'cpu'
    """

    device: str | None
    dtype: Any  # a string ("bfloat16", "torch.bfloat16") or a torch.dtype
    max_length: int | None
    batch_tokens: int | None
    num_threads: int | None
    attn_implementation: str | None
    revision: str | None
    cache_dir: str | os.PathLike[str] | None
    local_files_only: bool | None
    token: Any  # a string, pydantic SecretStr or Haystack Secret


class HostedKeywords(TypedDict, total=False):
    """The hosted backend's options (``HostedOptions``) as ``MemReranker`` keywords.

    Example:
        >>> options: HostedKeywords = {"base_url": "https://gpu-box:8000", "api_style": "vllm"}
        >>> options["api_style"]
        'vllm'
    """

    api_key: Any  # a string, pydantic SecretStr or Haystack Secret
    base_url: str | None
    api_style: str | None
    connect_timeout: float | None
    read_timeout: float | None
    attempt_timeout: float | None
    call_timeout: float | None
    max_response_bytes: int | None
    max_retries: int | None
    backoff_factor: float | None
    max_concurrency: int | None
    max_connections: int | None
    max_request_tokens: int | None
    max_documents_per_request: int | None
    oversize: str | None
    tokenizer: str | None
    max_length: int | None
    allow_insecure_http: bool | None
    verify: bool | str | None
    proxies: Mapping[str, str] | None
    headers: Mapping[str, str] | None


class OptionKeywords(LocalKeywords, HostedKeywords, total=False):
    """Every backend's options: what ``MemReranker(**options)`` accepts.

    Example:
        >>> options: OptionKeywords = {"device": "cpu", "read_timeout": 10}
        >>> sorted(options)
        ['device', 'read_timeout']
    """
