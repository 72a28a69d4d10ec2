"""The ``/rerank`` dialects one client speaks: path, auth header, request body and where the results are.

=========  ====================  =======================  =======================  =========================
style      path                  auth header              request                  results
=========  ====================  =======================  =======================  =========================
memos      ``/rerank``           ``Token <key>``          model, query, documents  ``results`` | ``data``
vllm       ``/rerank``           ``Bearer <key>`` (opt.)  model?, query, documents ``results``
jina       ``/v1/rerank``        ``Bearer <key>``         model, query, documents  ``results``
cohere     ``/v2/rerank``        ``Bearer <key>``         model, query, documents  ``results``
tei        ``/rerank``           ``Bearer <key>`` (opt.)  query, texts             a bare list
=========  ====================  =======================  =======================  =========================

The path is appended to ``base_url``, except that a ``base_url`` already ending in the path's version (``/v1``,
``/v2``) gets only ``/rerank``, and one already ending in ``/rerank`` is used as is. No dialect is asked for
``top_n``: every document is scored, and the core applies ``top_n`` after the merge.

Example:
    >>> DIALECTS["jina"].url("https://api.jina.ai")
    'https://api.jina.ai/v1/rerank'
    >>> DIALECTS["vllm"].url("http://gpu-box:8000/v1")
    'http://gpu-box:8000/v1/rerank'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MEMOS_KEY_ENV = "MEMOS_API_KEY"


@dataclass(frozen=True)
class Dialect:
    """How one kind of ``/rerank`` service is called.

    Attributes:
        name: The ``api_style`` value.
        service: Human name, for messages.
        path: Path appended to ``base_url``.
        auth_scheme: ``Authorization`` scheme (``Token`` or ``Bearer``).
        key_required: Whether a call without a key is refused before it is sent.
        key_env: Environment variable read for the key when ``api_key`` is not given (Memos only, so that a
            Memos key is never sent to another service).
        documents_field: Request field holding the documents.
        default_model: Model sent when none is given (``None``: the field is left out).
        max_documents: Default ``max_documents_per_request``.
    """

    name: str
    service: str
    path: str
    auth_scheme: str
    key_required: bool
    key_env: str | None
    documents_field: str
    default_model: str | None
    max_documents: int

    def url(self, base_url: str) -> str:
        """The endpoint URL for ``base_url``."""
        base = base_url.rstrip("/")
        if base.endswith("/rerank"):
            return base
        version = self.path[: -len("/rerank")]
        if version and base.endswith(version):
            return base + "/rerank"
        return base + self.path

    def headers(self, api_key: str | None) -> dict[str, str]:
        """Request headers, with the key in this dialect's form when there is one."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"{self.auth_scheme} {api_key}"
        return headers

    def body(self, model: str | None, query: str, documents: list[str]) -> dict[str, Any]:
        """The JSON request body. Never carries ``top_n``: the service must score every document."""
        body: dict[str, Any] = {"query": query, self.documents_field: documents}
        if self.name == "tei":
            body.update(raw_scores=False, return_text=False, truncate=False)
            return body
        if model is not None:
            body = {"model": model, **body}
        if self.name == "jina":
            body["return_documents"] = False
        return body


DIALECTS: dict[str, Dialect] = {
    "memos": Dialect(
        "memos", "the Memos Rerank API", "/rerank", "Token", True, MEMOS_KEY_ENV, "documents", "memos-reranker-4b", 100
    ),
    "vllm": Dialect("vllm", "the vLLM rerank server", "/rerank", "Bearer", False, None, "documents", None, 100),
    "jina": Dialect("jina", "the Jina rerank API", "/v1/rerank", "Bearer", True, None, "documents", None, 100),
    "cohere": Dialect("cohere", "the Cohere rerank API", "/v2/rerank", "Bearer", True, None, "documents", None, 1000),
    "tei": Dialect("tei", "the TEI rerank server", "/rerank", "Bearer", False, None, "texts", None, 32),
}


def body_code(payload: Any) -> int | None:
    """The service's body ``code`` when it signals an error (anything but 0 or 200), else ``None``."""
    if not isinstance(payload, dict) or "code" not in payload:
        return None
    code = payload["code"]
    if isinstance(code, str) and code.strip().lstrip("-").isdigit():
        code = int(code)
    if isinstance(code, bool) or not isinstance(code, int):
        return None if code is None else -1
    return None if code in (0, 200) else code


def body_message(payload: Any) -> str:
    """The service's own error words, from whichever field the dialect uses."""
    if isinstance(payload, dict):
        for key in ("message", "msg", "detail", "error"):
            value = payload.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"]
    return ""


def extract_results(payload: Any) -> list[Any] | str:
    """The result list of a successful answer: ``results``, else ``data.results``, else ``data``, else the body
    itself when it is a list (TEI). Returns a description of the problem when there is none."""
    if isinstance(payload, list):
        return payload
    if not isinstance(payload, dict):
        return f"expected a JSON object or list, got {type(payload).__name__}"
    if "results" in payload:
        results = payload["results"]
    elif isinstance(payload.get("data"), dict) and "results" in payload["data"]:
        results = payload["data"]["results"]
    elif "data" in payload:
        results = payload["data"]
    else:
        return f"no 'results' or 'data' in the answer (keys: {sorted(payload)[:8]})"
    if not isinstance(results, list):
        return f"'results' is a {type(results).__name__}, not a list"
    return results
