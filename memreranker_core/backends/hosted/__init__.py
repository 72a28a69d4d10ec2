"""The hosted backend: the Memos Rerank API, or any vLLM / Jina / Cohere / TEI ``/rerank`` endpoint.

Importing this package imports none of its modules; each public name loads its module on first use. One module
per job:

=============  ==============================================================================================
``options``    ``HostedOptions``: every hosted setting, declared once
``client``     ``HostedBackend``: the ``ScoringBackend`` (key, chunks sent concurrently, merge)
``transport``  one pooled ``requests`` session, timeouts, retries with backoff and ``Retry-After``
``dialects``   each service's path, auth header, request body and result list
``failures``   HTTP statuses and body codes mapped to typed errors and retry decisions
``responses``  the index-by-index check of a result list before any score is attached
``chunking``   splitting a call under the service's token and document limits
=============  ==============================================================================================
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module (relative to this package) that defines it
_EXPORTS = {
    "HostedOptions": "options",
    "HostedBackend": "client",
    "DEFAULT_BASE_URL": "options",
    "DIALECTS": "dialects",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
