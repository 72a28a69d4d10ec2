"""The ``/rerank`` dialects one client speaks: the request side (path, auth header, request body).

Reading the answer (where the results are, body codes) is ``responses``' job.

=========  ====================  =======================  ==========================
style      path                  auth header              request
=========  ====================  =======================  ==========================
memos      ``/rerank``           ``Token <key>``          model, query, documents
vllm       ``/v1/rerank``        ``Bearer <key>`` (opt.)  model?, query, documents
jina       ``/v1/rerank``        ``Bearer <key>``         model, query, documents
cohere     ``/v2/rerank``        ``Bearer <key>``         model, query, documents
tei        ``/rerank``           ``Bearer <key>`` (opt.)  query, texts
=========  ====================  =======================  ==========================

The path is appended to ``base_url``'s path (before any query), except that a ``base_url`` already ending in the
path's version (``/v1``, ``/v2``) gets only ``/rerank``, and one already ending in ``/rerank`` is used as is. No
dialect is asked for ``top_n``: every document is scored, and the core applies ``top_n`` after the merge.

Example:
    >>> DIALECTS["jina"].url("https://api.jina.ai")
    'https://api.jina.ai/v1/rerank'
    >>> DIALECTS["vllm"].url("http://gpu-box:8000/v1?x=1")
    'http://gpu-box:8000/v1/rerank?x=1'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memreranker_core.backends import MEMOS_API_KEY_ENV


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

    def endpoint_path(self, base_path: str) -> str:
        """The endpoint's path for a ``base_url`` whose path is ``base_path`` (the query stays where it is)."""
        base = base_path.rstrip("/")
        if base.endswith("/rerank"):
            return base
        version = self.path[: -len("/rerank")]
        if version and base.endswith(version):
            return base + "/rerank"
        return base + self.path

    def url(self, base_url: str) -> str:
        """The endpoint URL for ``base_url`` (parsed as the transport reads it; its query kept at the end)."""
        from memreranker_core.backends.hosted.urls import ServiceURL

        service = ServiceURL.parse(base_url, allow_insecure_http=True)
        return service.with_path(self.endpoint_path(service.path))

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
        "memos",
        "the Memos Rerank API",
        "/rerank",
        "Token",
        True,
        MEMOS_API_KEY_ENV,
        "documents",
        "memos-reranker-4b",
        100,
    ),
    "vllm": Dialect("vllm", "the vLLM rerank server", "/v1/rerank", "Bearer", False, None, "documents", None, 100),
    "jina": Dialect("jina", "the Jina rerank API", "/v1/rerank", "Bearer", True, None, "documents", None, 100),
    "cohere": Dialect("cohere", "the Cohere rerank API", "/v2/rerank", "Bearer", True, None, "documents", None, 1000),
    "tei": Dialect("tei", "the TEI rerank server", "/rerank", "Bearer", False, None, "texts", None, 32),
}
