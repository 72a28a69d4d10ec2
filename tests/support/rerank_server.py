"""A real loopback ``/rerank`` server speaking every dialect the hosted backend supports, with fault injection.

``RerankServer`` runs a standard-library ``ThreadingHTTPServer`` on 127.0.0.1 (a free port, HTTP/1.1 keep-alive)
and answers like the Memos Rerank API, vLLM, Jina, Cohere v2 or TEI, checking the API key the way each one sends
it. Faults queued with ``inject`` are served to the next requests, one fault per request, in order.

Example:
    >>> from tests.support.rerank_server import Fault, RerankServer
    >>> with RerankServer(api_key="k") as server:  # doctest: +SKIP
    ...     server.inject(503, Fault.rate_limited(retry_after="0"), Fault.shuffled())
    ...     rr = MemReranker(backend="hosted", base_url=server.base_url, api_key="k", backoff_factor=0.001)
    ...     rr.score("Where did Caroline go?", ["Caroline went to a support group.", "It rained."])
    ...     server.requests[-1]["documents"]
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Scorer = Callable[[str, list[str]], list[float]]

#: Paths each dialect answers on (relative to the host); the first is the one ``base_url`` points under.
DIALECT_PATHS: dict[str, tuple[str, ...]] = {
    "memos": ("/api/openmem/v1/rerank",),
    "vllm": ("/rerank", "/v1/rerank", "/v2/rerank"),
    "jina": ("/v1/rerank",),
    "cohere": ("/v2/rerank",),
    "tei": ("/rerank",),
}
#: What ``.base_url`` returns for each dialect (the part before the path the client appends).
DIALECT_BASES = {"memos": "/api/openmem/v1", "vllm": "", "jina": "", "cohere": "", "tei": ""}

MEMOS_MESSAGES = {
    40000: "parameter error",
    40002: "query must not be empty",
    40003: "documents must not be empty",
    40100: "API key is required",
    40130: "API key is required",
    40132: "API key is invalid or expired",
    40300: "call rate limit exceeded",
    40301: "input token rate limit exceeded",
    40302: "token rate limit exceeded",
    40304: "quota used up",
    40305: "input exceeds the per-call token limit",
    50000: "internal server error",
    50002: "model service unavailable",
}

_WORD = re.compile(r"\w+", re.UNICODE)


def overlap_score(query: str, documents: list[str]) -> list[float]:
    """The default scorer: P(yes) from word overlap, in [0.01, 0.99], distinct for distinct documents.

    ``0.01 + 0.97 * (share of the query's words found in the document) + 0.01 * h``, where ``h`` in [0, 1) comes
    from a hash of the document, so two different documents almost never tie and a score attached to the wrong
    document is caught.
    """
    query_words = {word.lower() for word in _WORD.findall(query)}
    scores = []
    for document in documents:
        words = {word.lower() for word in _WORD.findall(document)}
        share = len(query_words & words) / len(query_words) if query_words else 0.0
        digest = hashlib.sha256(document.encode("utf-8")).digest()
        tie_break = int.from_bytes(digest[:6], "big") / float(1 << 48)
        scores.append(0.01 + 0.97 * share + 0.01 * tie_break)
    return scores


def estimate_tokens(text: str) -> int:
    """A rough server-side token count (one per 4 characters), used only to enforce ``max_request_tokens``."""
    return max(1, (len(text) + 3) // 4)


@dataclass(frozen=True)
class Fault:
    """One fault, served to one request. Build with the class methods; ``inject`` also takes shorthands.

    Shorthands for ``RerankServer.inject``: an ``int`` is an HTTP error status (``429`` comes with
    ``Retry-After: 0``); a string names a fault kind with its defaults (``"drop"``, ``"slow"``, ...).
    """

    kind: str
    status: int = 200
    code: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    message: str | None = None
    size: int = 0

    @classmethod
    def http_error(cls, status: int, retry_after: str | None = None) -> Fault:
        """A JSON error body with this HTTP status (500, 502, 503, 408, 400, ...)."""
        return cls("http_error", status=status, retry_after=retry_after)

    @classmethod
    def rate_limited(cls, retry_after: str | None = "0") -> Fault:
        """HTTP 429 with ``Retry-After`` (seconds or an HTTP date; ``None`` for no header)."""
        return cls("http_error", status=429, retry_after=retry_after)

    @classmethod
    def body_code(cls, code: int, status: int = 200, message: str | None = None) -> Fault:
        """A Memos-style ``{"code", "message", "data": null}`` error body, with HTTP 200 by default."""
        return cls("body_code", status=status, code=code, message=message)

    @classmethod
    def drop(cls) -> Fault:
        """Send the headers and half of the body, then close the connection."""
        return cls("drop")

    @classmethod
    def reset(cls) -> Fault:
        """Close the connection without answering at all."""
        return cls("reset")

    @classmethod
    def slow(cls, seconds: float = 1.0) -> Fault:
        """Wait ``seconds`` before answering normally (longer than the client's read timeout)."""
        return cls("slow", delay=seconds)

    @classmethod
    def malformed_json(cls) -> Fault:
        """HTTP 200 with a body that is not JSON."""
        return cls("malformed_json")

    @classmethod
    def html(cls, status: int = 502, page: str | None = None) -> Fault:
        """An HTML error page, as a proxy in front of the service would send (``page``: its whole text)."""
        return cls("html", status=status, message=page)

    @classmethod
    def trickle(cls, every: float = 0.05) -> Fault:
        """A good answer sent one byte every ``every`` seconds, after its headers (each read is quick; the
        whole answer is slow). Stops when the client hangs up."""
        return cls("trickle", delay=every)

    @classmethod
    def trickle_headers(cls, every: float = 0.05) -> Fault:
        """A good answer whose status line and headers arrive one byte every ``every`` seconds."""
        return cls("trickle_headers", delay=every)

    @classmethod
    def gzip_bomb(cls, size: int = 40 * 1024 * 1024) -> Fault:
        """A good answer padded with ``size`` spaces (still valid JSON), sent gzip-compressed: small on the wire,
        large once decoded."""
        return cls("gzip_bomb", size=size)

    @classmethod
    def padded(cls, size: int) -> Fault:
        """A good answer padded with ``size`` spaces, sent as is (with its ``Content-Length``)."""
        return cls("padded", size=size)

    @classmethod
    def deep_json(cls, depth: int = 100_000) -> Fault:
        """HTTP 200 with a JSON array nested ``depth`` levels deep."""
        return cls("deep_json", size=depth)

    @classmethod
    def missing_index(cls) -> Fault:
        """A good answer with one result left out."""
        return cls("missing_index")

    @classmethod
    def duplicate_index(cls) -> Fault:
        """A good answer where one result's index is replaced by another result's index."""
        return cls("duplicate_index")

    @classmethod
    def out_of_range_index(cls) -> Fault:
        """A good answer where one index is past the end of ``documents``."""
        return cls("out_of_range_index")

    @classmethod
    def score_out_of_range(cls) -> Fault:
        """A good answer where one probability is 1.5."""
        return cls("score_out_of_range")

    @classmethod
    def no_results(cls) -> Fault:
        """HTTP 200 with a JSON object that has no results at all."""
        return cls("no_results")

    @classmethod
    def shuffled(cls) -> Fault:
        """A correct answer, results in random order (not a fault for a correct client)."""
        return cls("shuffled")

    @classmethod
    def wrapped(cls) -> Fault:
        """A correct answer wrapped as ``{"code": 0, "message": "ok", "data": {...}}``."""
        return cls("wrapped")

    @classmethod
    def wrapped_list(cls) -> Fault:
        """A correct answer as ``{"code": 200, "message": "ok", "data": [results]}``."""
        return cls("wrapped_list")


#: Fault kinds whose answer still carries every correct score (a correct client succeeds on them).
BENIGN_KINDS = frozenset({"shuffled", "wrapped", "wrapped_list"})
_NAMED = {
    "drop": Fault.drop,
    "reset": Fault.reset,
    "slow": Fault.slow,
    "malformed_json": Fault.malformed_json,
    "html": Fault.html,
    "missing_index": Fault.missing_index,
    "duplicate_index": Fault.duplicate_index,
    "out_of_range_index": Fault.out_of_range_index,
    "score_out_of_range": Fault.score_out_of_range,
    "no_results": Fault.no_results,
    "shuffled": Fault.shuffled,
    "wrapped": Fault.wrapped,
    "wrapped_list": Fault.wrapped_list,
    "rate_limited": Fault.rate_limited,
    "trickle": Fault.trickle,
    "trickle_headers": Fault.trickle_headers,
    "gzip_bomb": Fault.gzip_bomb,
    "deep_json": Fault.deep_json,
}


def as_fault(spec: Fault | int | str) -> Fault:
    """Turn an ``inject`` argument into a ``Fault``."""
    if isinstance(spec, Fault):
        return spec
    if isinstance(spec, int) and not isinstance(spec, bool):
        return Fault.rate_limited() if spec == 429 else Fault.http_error(spec)
    if isinstance(spec, str) and spec in _NAMED:
        return _NAMED[spec]()
    raise ValueError(f"unknown fault {spec!r}; use a Fault, an HTTP status or one of {sorted(_NAMED)}")


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the server saw it (``body`` parsed from JSON when possible; ``path`` without the query,
    ``query`` the raw query string or ``None``; ``client_port`` tells connections apart)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    fault: Fault | None
    query: str | None = None
    client_port: int = 0


@dataclass
class _State:
    scorer: Scorer
    api_style: str
    api_key: str | None
    max_documents: int | None
    max_request_tokens: int | None
    fault_picker: Callable[[Any], Fault | None] | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    faults: deque[Fault] = field(default_factory=deque)
    received: list[ReceivedRequest] = field(default_factory=list)


class RerankServer:
    """Loopback ``/rerank`` server for one dialect, with fault injection. Use it as a context manager.

    Args:
        scorer: ``scorer(query, documents) -> [P(yes), ...]``; default ``overlap_score``.
        api_style: ``"memos"``, ``"vllm"``, ``"jina"``, ``"cohere"`` or ``"tei"``.
        api_key: When set, requests must carry it (``Authorization: Token <key>`` for Memos, ``Bearer`` for
            the others) or get that service's authentication error.
        max_documents: Refuse (as the service would) requests with more documents than this.
        max_request_tokens: Refuse requests whose documents together exceed this many (4-characters) tokens.
        fault_picker: Called with each request body when no injected fault is queued; returns a ``Fault`` or
            ``None``. Used by load tests for random faults.
        tls: ``(certfile, keyfile)`` to serve HTTPS (see ``self_signed_certificate``); ``base_url`` is then
            ``https://localhost:<port>``.

    Attributes:
        base_url: URL to pass as the client's ``base_url``.
        requests: Every received request body (parsed JSON), in arrival order.
        received: Every received request with its path, headers and the fault it got.

    Example:
        >>> with RerankServer(api_style="tei") as server:  # doctest: +SKIP
        ...     server.inject(502, 503, "drop")
    """

    def __init__(
        self,
        scorer: Scorer | None = None,
        api_style: str = "memos",
        api_key: str | None = None,
        *,
        max_documents: int | None = None,
        max_request_tokens: int | None = None,
        fault_picker: Callable[[Any], Fault | None] | None = None,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self._tls = tls
        if api_style not in DIALECT_PATHS:
            raise ValueError(f"api_style must be one of {sorted(DIALECT_PATHS)}, not {api_style!r}")
        self._state = _State(
            scorer=scorer or overlap_score,
            api_style=api_style,
            api_key=api_key,
            max_documents=max_documents,
            max_request_tokens=max_request_tokens,
            fault_picker=fault_picker,
        )
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> RerankServer:
        """Bind a free port on 127.0.0.1 and serve in a background thread."""
        handler = type("BoundHandler", (_Handler,), {"state": self._state})
        server = _QuietServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        server.block_on_close = False
        if self._tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self._tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> RerankServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- public
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running; use it as a context manager")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        where = f"https://localhost:{self.port}" if self._tls is not None else f"http://127.0.0.1:{self.port}"
        return where + DIALECT_BASES[self._state.api_style]

    @property
    def api_style(self) -> str:
        return self._state.api_style

    @property
    def requests(self) -> list[Any]:
        with self._state.lock:
            return [item.body for item in self._state.received]

    @property
    def received(self) -> list[ReceivedRequest]:
        with self._state.lock:
            return list(self._state.received)

    @property
    def faults_served(self) -> list[Fault]:
        """The faults actually served, in order (benign ones included)."""
        with self._state.lock:
            return [item.fault for item in self._state.received if item.fault is not None]

    def inject(self, *faults: Fault | int | str) -> None:
        """Queue faults; each of the next requests gets the next one. ``inject(500, 502, 503)`` is a 5xx run."""
        parsed = [as_fault(spec) for spec in faults]
        with self._state.lock:
            self._state.faults.extend(parsed)

    def pending_faults(self) -> int:
        """How many injected faults have not been served yet."""
        with self._state.lock:
            return len(self._state.faults)

    def clear(self) -> None:
        """Forget received requests and pending faults."""
        with self._state.lock:
            self._state.faults.clear()
            self._state.received.clear()


def random_fault_picker(
    rate: float, kinds: Sequence[Fault | int | str], seed: int = 0
) -> Callable[[Any], Fault | None]:
    """A ``fault_picker`` that serves a random fault from ``kinds`` to a share ``rate`` of requests (seeded)."""
    rng = random.Random(seed)
    choices = [as_fault(kind) for kind in kinds]
    lock = threading.Lock()

    def pick(_body: Any) -> Fault | None:
        with lock:
            return rng.choice(choices) if rng.random() < rate else None

    return pick


class _QuietServer(ThreadingHTTPServer):
    """Does not print a traceback when a client hangs up (the client timed out: that is the test's point).

    Its listen backlog holds as many pending connections as a real server's (uvicorn: 2048, nginx: 511), so that
    100 concurrent callers opening connections at once are queued, not reset (the standard library's is 5).
    """

    request_queue_size = 512

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    state: _State
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections end, so their threads do not outlive the test
    wbufsize = 1 << 16  # headers and body leave in one packet (no Nagle / delayed-ACK stalls)

    def log_message(self, format: str, *args: Any) -> None:  # silence the stderr access log
        return

    # ----------------------------------------------------------------- dispatch
    def do_GET(self) -> None:
        if self.path == "/health":
            self._send_json(200, {})
        else:
            self._send_json(404, {"error": "not found"})

    def do_POST(self) -> None:
        state = self.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = raw.decode("utf-8", "replace")
        with state.lock:
            fault = state.faults.popleft() if state.faults else None
        if fault is None and state.fault_picker is not None:
            fault = state.fault_picker(body)
        headers = {key.lower(): value for key, value in self.headers.items()}
        path, _, query = self.path.partition("?")
        received = ReceivedRequest(
            "POST", path, headers, body, fault, query if "?" in self.path else None, self.client_address[1]
        )
        with state.lock:
            state.received.append(received)

        if path not in DIALECT_PATHS[state.api_style]:
            self._send_error_for(404, "not found: no /rerank route at this path")
            return
        if not self._authorized(headers.get("authorization")):
            return
        if fault is not None and fault.kind not in BENIGN_KINDS and self._serve_fault(fault, body):
            return
        self._answer(body, fault)

    # ----------------------------------------------------------------- auth
    def _authorized(self, header: str | None) -> bool:
        key = self.state.api_key
        if key is None:
            return True
        scheme = "Token" if self.state.api_style == "memos" else "Bearer"
        if header == f"{scheme} {key}":
            return True
        style = self.state.api_style
        if style == "memos":
            if header is None:
                self._send_json(401, {"code": 40100, "message": MEMOS_MESSAGES[40100], "data": None})
            else:  # the real service answers a bad key with HTTP 200 and a body code; echo it to test redaction
                given = header.split(" ", 1)[-1]
                self._send_json(200, {"code": 40132, "message": f"API key {given} is invalid or expired", "data": None})
        elif style == "vllm":
            self._send_json(401, {"error": "Unauthorized"})
        elif style == "jina":
            self._send_json(401, {"detail": "Invalid API key"})
        elif style == "cohere":
            self._send_json(401, {"id": str(uuid.uuid4()), "message": "invalid api token"})
        else:
            self._send_json(401, {"error": "Unauthorized", "error_type": "Unauthorized"})
        return False

    # ----------------------------------------------------------------- faults
    def _serve_fault(self, fault: Fault, body: Any) -> bool:
        """Serve ``fault``; return False when it only alters a good answer (handled in ``_answer``)."""
        kind = fault.kind
        if kind == "http_error":
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._send_error_for(fault.status, f"injected HTTP {fault.status}", extra)
        elif kind == "body_code":
            code = fault.code if fault.code is not None else 50000
            message = fault.message or MEMOS_MESSAGES.get(code, "error")
            self._send_json(fault.status, {"code": code, "message": message, "data": None})
        elif kind == "drop":
            if isinstance(self._request_fields(body), str):
                return False
            payload = json.dumps(self._good_payload(body)).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self._hang_up()
        elif kind == "reset":
            self._hang_up()
        elif kind == "slow":
            time.sleep(fault.delay)
            return False
        elif kind == "malformed_json":
            self._send_raw(200, b'{"results": [{"index": 0, "relevance_score": 0.5}', "application/json")
        elif kind == "html":
            page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
            self._send_raw(fault.status, fault.message.encode("utf-8") if fault.message else page, "text/html")
        elif kind in ("trickle", "trickle_headers", "gzip_bomb", "padded"):
            if isinstance(self._request_fields(body), str):
                return False
            self._send_shaped(fault, json.dumps(self._good_payload(body)).encode("utf-8"))
        elif kind == "deep_json":
            self._send_raw(200, b"[" * fault.size + b"]" * fault.size, "application/json")
        elif kind == "no_results":
            self._send_json(200, {"id": str(uuid.uuid4()), "model": "x", "usage": {}})
        else:
            return False
        return True

    def _send_shaped(self, fault: Fault, payload: bytes) -> None:
        """A good answer, trickled, padded or compressed as ``fault`` says."""
        extra: dict[str, str] = {}
        if fault.kind in ("gzip_bomb", "padded"):
            payload = payload[:-1] + b" " * fault.size + payload[-1:]
        if fault.kind == "gzip_bomb":
            payload = gzip.compress(payload, compresslevel=9)
            extra["Content-Encoding"] = "gzip"
        head = ["HTTP/1.1 200 OK", "Content-Type: application/json", f"Content-Length: {len(payload)}"]
        head += [f"{key}: {value}" for key, value in extra.items()]
        head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        self.close_connection = True
        try:
            if fault.kind == "trickle_headers":
                for index in range(len(head_bytes)):
                    self.wfile.write(head_bytes[index : index + 1])
                    self.wfile.flush()
                    time.sleep(fault.delay)
                self.wfile.write(payload)
            elif fault.kind == "trickle":
                self.wfile.write(head_bytes)
                for index in range(len(payload)):
                    self.wfile.write(payload[index : index + 1])
                    self.wfile.flush()
                    time.sleep(fault.delay)
            else:
                self.wfile.write(head_bytes + payload)
            self.wfile.flush()
        except OSError:  # the client hung up (its time limit): stop sending
            pass

    def _hang_up(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ----------------------------------------------------------------- answers
    def _request_fields(self, body: Any) -> tuple[str, list[str], int | None] | str:
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        doc_key = "texts" if self.state.api_style == "tei" else "documents"
        query, documents = body.get("query"), body.get(doc_key)
        if not isinstance(query, str) or not query:
            return "query must be a non-empty string"
        if not isinstance(documents, list) or not documents or not all(isinstance(d, str) for d in documents):
            return f"{doc_key} must be a non-empty list of strings"
        top_n = body.get("top_n")
        return query, documents, top_n if isinstance(top_n, int) else None

    def _scored(self, body: Any) -> list[dict[str, Any]]:
        query, documents, _top_n = self._request_fields(body)  # type: ignore[misc]
        scores = self.state.scorer(query, documents)
        style = self.state.api_style
        results = []
        for index, (document, score) in enumerate(zip(documents, scores, strict=True)):
            if style == "tei":
                results.append({"index": index, "score": float(score)})
            elif style == "cohere":
                results.append({"index": index, "relevance_score": float(score)})
            else:
                results.append({"index": index, "document": {"text": document}, "relevance_score": float(score)})
        key = "score" if style == "tei" else "relevance_score"
        return sorted(results, key=lambda item: -item[key])

    def _good_payload(self, body: Any) -> Any:
        results = self._scored(body)
        _query, _documents, top_n = self._request_fields(body)  # type: ignore[misc]
        if top_n is not None:
            results = results[:top_n]
        return self._envelope(results, body)

    def _envelope(self, results: list[dict[str, Any]], body: Any) -> Any:
        style = self.state.api_style
        tokens = sum(estimate_tokens(d) for d in body.get("texts" if style == "tei" else "documents", []))
        if style == "tei":
            return results
        if style == "cohere":
            return {"id": str(uuid.uuid4()), "results": results, "meta": {"billed_units": {"search_units": 1}}}
        model = body.get("model") or "served-model"
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return {"id": f"rerank-{uuid.uuid4().hex}", "model": model, "usage": usage, "results": results}

    def _answer(self, body: Any, fault: Fault | None) -> None:
        fields = self._request_fields(body)
        if isinstance(fields, str):
            self._send_error_for(400, fields, code=40000)
            return
        _query, documents, top_n = fields
        limit = self.state.max_documents
        if limit is not None and len(documents) > limit:
            self._send_error_for(
                413 if self.state.api_style == "tei" else 400, f"at most {limit} documents", code=40000
            )
            return
        budget = self.state.max_request_tokens
        if budget is not None and sum(estimate_tokens(d) for d in documents) > budget:
            self._send_error_for(413 if self.state.api_style == "tei" else 400, f"over {budget} tokens", code=40305)
            return
        try:
            results = self._scored(body)
        except Exception as exc:  # a scorer bug: answer 500 so the test sees it rather than a dropped connection
            self._send_error_for(500, f"scorer failed: {type(exc).__name__}: {exc}")
            return
        if top_n is not None:
            results = results[:top_n]
        kind = fault.kind if fault is not None else None
        key = "score" if self.state.api_style == "tei" else "relevance_score"
        if kind == "shuffled":
            random.shuffle(results)
        elif kind == "missing_index":
            results = results[:-1]
        elif kind == "duplicate_index" and len(results) > 1:
            results[-1] = {**results[-1], "index": results[0]["index"]}
        elif kind == "duplicate_index":
            results.append(dict(results[0]))
        elif kind == "out_of_range_index":
            results[-1] = {**results[-1], "index": len(documents) + 3}
        elif kind == "score_out_of_range":
            results[0] = {**results[0], key: 1.5}
        payload = self._envelope(results, body)
        if kind == "wrapped" and self.state.api_style != "tei":
            payload = {"code": 0, "message": "ok", "data": payload}
        elif kind == "wrapped_list":
            payload = {"code": 200, "message": "ok", "data": results}
        self._send_json(200, payload)

    def _send_error_for(
        self, status: int, message: str, extra_headers: dict[str, str] | None = None, code: int | None = None
    ) -> None:
        style = self.state.api_style
        if style == "memos":
            memos_code = (
                code if code is not None else {429: 40300, 401: 40100}.get(status, 50000 if status >= 500 else 40000)
            )
            payload: Any = {"code": memos_code, "message": message, "data": None}
        elif style == "vllm":
            payload = {"object": "error", "message": message, "type": "BadRequestError", "code": status}
        elif style == "jina":
            payload = {"detail": message}
        elif style == "cohere":
            payload = {"id": str(uuid.uuid4()), "message": message}
        else:
            payload = {"error": message, "error_type": "Validation" if status < 500 else "Backend"}
        self._send_json(status, payload, extra_headers)

    def _send_json(self, status: int, payload: Any, extra_headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(payload).encode("utf-8"), "application/json", extra_headers)

    def _send_raw(
        self, status: int, payload: bytes, content_type: str, extra_headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (extra_headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (read timeout): nothing to answer
            self.close_connection = True


class RecordingListener:
    """A loopback TCP listener that records every connection it gets and answers ``502`` (a stand-in proxy).

    Used to prove that a request did *not* go through an environment proxy: point ``HTTP_PROXY`` at ``.url`` and
    check ``.connections`` afterwards.

    Attributes:
        url: ``http://127.0.0.1:<port>``.
        connections: How many connections were accepted.
        first_lines: The request line of each connection (a proxy sees ``POST http://host/... HTTP/1.1``).
    """

    def __init__(self) -> None:
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.first_lines: list[str] = []

    def __enter__(self) -> RecordingListener:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self._socket = listener
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    @property
    def url(self) -> str:
        assert self._socket is not None
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self.first_lines)

    def _serve(self) -> None:
        while self._socket is not None:
            try:
                conn, _address = self._socket.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                with self._lock:
                    self.first_lines.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
                try:
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass


def self_signed_certificate(folder: Any) -> tuple[str, str] | None:
    """Write a one-day self-signed certificate for ``localhost`` / 127.0.0.1 into ``folder`` with the ``openssl``
    command; ``(certfile, keyfile)``, or ``None`` when ``openssl`` is not available. The certificate is also its
    own CA bundle (pass it as ``verify=``)."""
    cert, key = f"{folder}/cert.pem", f"{folder}/key.pem"
    command = [
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return cert, key


class SilentListener(RecordingListener):
    """A loopback TCP listener that accepts every connection and never answers (a hung service).

    Attributes:
        url: ``http://127.0.0.1:<port>``.
        connections: How many connections were accepted.
    """

    def __init__(self) -> None:
        super().__init__()
        self._held: list[socket.socket] = []

    def __exit__(self, *exc_info: object) -> None:
        super().__exit__(*exc_info)
        with self._lock:
            held, self._held = self._held, []
        for conn in held:
            conn.close()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._held)

    def _serve(self) -> None:
        listener = self._socket
        while listener is not None:
            try:
                conn, _address = listener.accept()
            except OSError:  # closed by __exit__
                return
            with self._lock:
                self._held.append(conn)


def refused_url() -> str:
    """``http://127.0.0.1:<port>`` of a port nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
