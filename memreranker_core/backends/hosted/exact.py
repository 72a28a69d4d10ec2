"""The vLLM exact mode: the client renders and tokenizes every prompt itself and sends token ids to ``/classify``.

On when ``api_style="vllm"`` and the ``tokenizer`` option names the served model's tokenizer. Each document's
whole prompt (system prompt, instruction, dialogue context, query, document, suffix) is built by the same code as
the local backend's (``memreranker_core.prompt_tokens.PromptEncoder``: user text kept literal, so ``<|im_end|>`` or
``</think>`` in a memory stays text; a document's tail cut to fit ``max_length`` exactly where the local backend
cuts it) and sent as token ids to vLLM's ``/classify`` with ``use_activation: false``. A server started with::

    --runner pooling --hf-overrides '{"architectures": ["Qwen3ForSequenceClassification"],
        "classifier_from_token": ["no", "yes"], "is_original_qwen3_reranker": true}'

turns the causal LM into a one-label classifier whose weight is ``lm_head[yes] - lm_head[no]`` (vLLM's
``from_2_way_softmax`` conversion), so without the activation it answers ``logit(yes) - logit(no)`` at the last
token: the local backend's log-odds, with no server-side template, no estimate and no text parsing at all.

Request and answer (vLLM 0.32, ``vllm/entrypoints/pooling/classify``)::

    POST /classify  {"model": "memreranker", "input": [[ids of prompt 0], [ids of prompt 1]],
                     "use_activation": false, "add_special_tokens": false}
    200            {"data": [{"index": 0, "probs": [1.15], "num_classes": 1, ...}, ...], ...}

Every index of the answer is checked (in range, once, each with one finite number) before a score is used.

``/classify`` is not under ``/v1``, and vLLM's ``--api-key`` guards only ``/v1``, ``/v2``, ``/inference`` and
``/cohere`` paths: an exact-mode server needs a guard that checks the key on every path (docs/serving.md); the
client sends ``Authorization: Bearer <api_key>`` when a key is given.

Example:
    >>> from memreranker_core.backends.hosted.urls import ServiceURL
    >>> mode = ExactMode("/models/MemReranker-0.6B", max_length=8192,
    ...                  service=ServiceURL.parse("http://127.0.0.1:8000/v1", allow_insecure_http=False))
    >>> mode.url
    'http://127.0.0.1:8000/classify'
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Sequence
from typing import Any

from memreranker_core.backends.hosted.chunking import plan_chunks
from memreranker_core.backends.hosted.failures import malformed
from memreranker_core.backends.hosted.responses import Answer
from memreranker_core.backends.hosted.urls import ServiceURL
from memreranker_core.checkpoint import resolve_instruction
from memreranker_core.errors import BadRequestError, HostedBackendError, InvalidInputError
from memreranker_core.prompt import DEFAULT_INSTRUCTION
from memreranker_core.prompt_tokens import PreparedCall, PromptEncoder
from memreranker_core.types import ScoreRequest

logger = logging.getLogger(__name__)

CLASSIFY_PATH = "/classify"


class ExactMode:
    """Token-id prompts for a vLLM server running MemReranker as a classifier (see the module docstring).

    Args:
        tokenizer: The served model's tokenizer: a ``tokenizer.json``, the model folder or its hub id.
        max_length: Most tokens of one prompt (the local backend's ``max_length``); at most the server's
            ``--max-model-len``.
        service: The parsed ``base_url``; a trailing ``/v1`` is dropped (``/classify`` sits at the root).
        oversize: ``"truncate"`` cuts a document's tail to fit ``max_length`` (as the local backend does);
            ``"error"`` refuses the call instead.

    Example:
        >>> from memreranker_core.backends.hosted.urls import ServiceURL
        >>> service = ServiceURL.parse("https://rerank.internal.example/v1", allow_insecure_http=False)
        >>> mode = ExactMode("IAAR-Shanghai/MemReranker-0.6B", max_length=8192, service=service)
        >>> mode.where  # the tokenizer is loaded on the first call, not here
        'https://rerank.internal.example/classify'
    """

    def __init__(self, tokenizer: str, *, max_length: int, service: ServiceURL, oversize: str = "truncate") -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.oversize = oversize
        root = service.path
        for suffix in ("/v1", "/classify"):
            root = root.removesuffix(suffix)
        self.path = root + CLASSIFY_PATH
        self.url = service.with_path(self.path)
        self.where = dataclasses.replace(service, path=self.path).public
        self._encoder: PromptEncoder | None = None
        self._default_instruction = DEFAULT_INSTRUCTION
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the tokenizer is loaded (the first call loads it)."""
        return self._encoder is not None

    def encoder(self) -> PromptEncoder:
        """The ``PromptEncoder`` on the served model's tokenizer, loaded on first use (no torch needed).

        Raises:
            MissingDependencyError: ``tokenizers`` is not installed (``pip install -e ".[vllm]"``).
            ModelLoadError: The tokenizer cannot be read, or it is not a Qwen3 reranker's.
        """
        with self._lock:
            if self._encoder is None:
                from memreranker_core.backends.hosted.tokenizer import default_instruction, load_tokenizer

                self._encoder = PromptEncoder(load_tokenizer(self.tokenizer))
                self._default_instruction = resolve_instruction(None, default_instruction(self.tokenizer))
            return self._encoder

    def plan(self, request: ScoreRequest, max_tokens: int, max_documents: int) -> tuple[PreparedCall, list[list[int]]]:
        """The call's token ids (``PreparedCall``) and its requests: positions grouped under ``max_tokens`` whole-
        prompt tokens and ``max_documents`` prompts each.

        Raises:
            InvalidInputError: The query, instruction and context leave no room for a document, or a document is
                over ``max_length`` with ``oversize="error"``.
        """
        encoder = self.encoder()
        prepared = encoder.prepare(request, default_instruction=self._default_instruction, max_length=self.max_length)
        if prepared.truncated and self.oversize == "error":
            raise InvalidInputError(
                f"document(s) {list(prepared.truncated[:10])} do not fit max_length={self.max_length} tokens with "
                "the query, instruction and context; shorten or split them, or pass oversize='truncate' to cut "
                "their tails as the local backend does"
            )
        shared = len(prepared.shared)
        costs = [shared + len(sequence) for sequence in prepared.sequences]
        return prepared, plan_chunks(costs, max_tokens, max_documents)

    def body(self, model: str | None, prepared: PreparedCall, chunk: Sequence[int]) -> dict[str, Any]:
        """The ``/classify`` request for the documents at ``chunk``: their whole prompts as token ids."""
        body: dict[str, Any] = {
            "input": [prepared.pair_ids(position) for position in chunk],
            "use_activation": False,
            "add_special_tokens": False,
        }
        if model is not None:
            body = {"model": model, **body}
        return body

    def logits(self, answer: Answer, chunk: Sequence[int], secrets: Sequence[str | None] = ()) -> list[float]:
        """``logit(yes) - logit(no)`` per document of ``chunk``, in request order, every index checked.

        Raises:
            MalformedResponseError: The answer is not a ``/classify`` answer for exactly these prompts.
        """
        problem = None
        data = answer.payload.get("data") if isinstance(answer.payload, dict) else None
        values: list[float | None] = [None] * len(chunk)
        if not isinstance(data, list):
            problem = "no 'data' list in the /classify answer (is api_style='vllm' talking to vLLM?)"
        else:
            problem = _fill(data, chunk, values)
        if problem is not None:
            raise malformed(problem).to_error(self.where, 1, secrets)
        return [float(value) for value in values]  # type: ignore[arg-type]

    def explain(self, error: HostedBackendError) -> HostedBackendError:
        """A clearer error for the refusals a misconfigured exact mode meets: an unknown model name, a server
        without ``/classify`` and a prompt over the server's ``--max-model-len``. Others are returned as they are."""
        if not isinstance(error, BadRequestError):
            return error
        said = str(error)
        if error.status_code == 404 and "does not exist" in said:
            hint = (
                "pass model= the name the server was started with (--served-model-name, see GET /v1/models), or "
                "leave model out to use the server's own"
            )
        elif error.status_code in (404, 405):
            hint = (
                "this server has no /classify: start vLLM with --runner pooling and the --hf-overrides of "
                "docs/serving.md, or leave tokenizer out to use the plain /v1/rerank dialect"
            )
        elif error.status_code == 400 and "maximum context length" in said:
            hint = f"lower max_length (now {self.max_length}) to at most the server's --max-model-len, or raise that"
        else:
            return error
        return BadRequestError(f"{said}; {hint}", status_code=error.status_code, code=error.code)

    def __repr__(self) -> str:
        return f"ExactMode(url={self.where!r}, max_length={self.max_length})"


def _fill(data: list[Any], chunk: Sequence[int], values: list[float | None]) -> str | None:
    """Put each item's number at its index; a description of what is wrong, or ``None``."""
    count = len(chunk)
    if len(data) != count:
        return f"{len(data)} results for {count} prompts sent"
    for item in data:
        index = item.get("index") if isinstance(item, dict) else None
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            shown = "a huge integer" if isinstance(index, int) and abs(index) >= 10**12 else repr(index)[:40]
            return f"result index {shown} out of range for {count} prompts sent"
        if values[index] is not None:
            return f"document {chunk[index]} scored more than once"
        probs = item.get("probs")
        if not isinstance(probs, list) or len(probs) != 1:
            return (
                f"document {chunk[index]}: expected one number in 'probs', got "
                f"{len(probs) if isinstance(probs, list) else type(probs).__name__}; start the server with the "
                "hf_overrides of docs/serving.md (one yes/no label)"
            )
        raw = probs[0]
        try:
            value = math.nan if isinstance(raw, bool) or not isinstance(raw, (int, float)) else float(raw)
        except OverflowError:  # an integer too large for a float (JSON allows hundreds of digits)
            value = math.nan
        if not math.isfinite(value):
            shown = "a huge integer" if isinstance(raw, int) and abs(raw) >= 10**12 else repr(raw)[:40]
            return f"document {chunk[index]}: score {shown} is not a finite number"
        values[index] = value
    return None


__all__ = ["CLASSIFY_PATH", "ExactMode"]
