"""The hosted backend: the Memos Rerank API, or any vLLM / Jina / Cohere / TEI ``/rerank`` endpoint.

Importing this package imports none of its modules; each public name loads its module on first use. One module
per job:

=============  ==============================================================================================
``options``    ``HostedOptions``: every hosted setting, declared once
``backend``    ``HostedBackend``: the ``ScoringBackend`` (key, plan, requests of a call at once, one merge)
``urls``       ``base_url`` parsed once, with the HTTP client's parser; the plain-http guard; the shown URL
``loop``       the backend's one event loop thread: sync and async calls run the same coroutine there
``calls``      one call in flight: its deadline, its task, why it was stopped (``close()``, cancellation)
``transport``  one pooled ``httpx.AsyncClient``, time and size limits, the one retry layer, log redaction
``dialects``   each service's request: path, auth header, body
``responses``  one answer read in one place: ``Answer`` or ``Failure``, then probabilities or ``Failure``
``failures``   ``Failure``: statuses and body codes mapped to typed errors and retry decisions; redaction
``chunking``   splitting a call under the service's token and document limits
``tokenizer``  the ``tokenizer`` option: the served model's tokenizer.json, loaded without torch
``exact``      the vLLM exact mode: whole prompts as token ids to ``/classify``, log-odds read back
=============  ==============================================================================================
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module (relative to this package) that defines it
_EXPORTS = {
    "HostedOptions": "options",
    "HostedBackend": "backend",
    "DEFAULT_BASE_URL": "options",
    "DIALECTS": "dialects",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
