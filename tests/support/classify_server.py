"""A loopback stand-in for vLLM's ``/classify``, for the exact mode's client side: it records each request and
answers with ``answer(body)``, a JSON value or raw bytes (``tests/integration/test_vllm_server.py`` runs the real
server)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _default_answer(body: Any) -> Any:
    return {"data": [{"index": i, "probs": [0.1 * i]} for i in range(len(body["input"]))]}


class ClassifyServer:
    """Records ``(path, headers, body)`` of each POST in ``requests`` and answers ``answer(body)`` (JSON, or bytes
    sent as they are). ``root`` is its base URL; use it as a context manager or call ``close()``."""

    def __init__(self, answer: Callable[[Any], Any] = _default_answer) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.answer = answer
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                recorder.requests.append((self.path, dict(self.headers), body))
                answer = recorder.answer(body)
                payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.root = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> ClassifyServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
