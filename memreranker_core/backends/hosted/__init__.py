"""The hosted backend: the Memos Rerank API, or any vLLM / Jina / Cohere / TEI ``/rerank`` endpoint.

Importing this package imports none of its modules; each public name loads its module on first use. One module
per job:

=============  ==============================================================================================
``options``    ``HostedOptions``: every hosted setting, declared once
``client``     ``HostedBackend``: the ``ScoringBackend`` (key, chunks sent concurrently, merge)
``urls``       ``base_url`` parsed once, as the transport reads it; the plain-http guard; the shown URL
``calls``      one call in flight: its deadline, its stop signal (``close()``, async cancellation)
``transport``  one pooled ``requests`` session, time and size limits, retries with backoff and ``Retry-After``
``watchdog``   an attempt's handle on its socket: a deadline, ``close()`` or a cancellation shuts it down
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
    "HostedBackend": "client",
    "DEFAULT_BASE_URL": "options",
    "DIALECTS": "dialects",
    "run_in_thread": "calls",  # defined in memreranker_core.cancellation
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
