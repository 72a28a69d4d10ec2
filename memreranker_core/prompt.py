"""The MemReranker / Qwen3-Reranker prompt, exactly as the model card's transformers recipe writes it.

A pair is scored on::

    <|im_start|>system
    Judge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>
    <|im_start|>user
    <Instruct>: {instruction}
    <Query>: {query field}
    <Document>: {document}<|im_end|>
    <|im_start|>assistant
    <think>

    </think>

and the score is P(yes) = sigmoid(logit("yes") - logit("no")) at the last position.

Dialogue context goes into the query field, before the query, so that every backend (including hosted services,
which have no field for it) sees the same text. With ``context=["Caroline: I went to a support group.",
"Melanie: How was it?"]`` and query ``"When did Caroline go?"`` the query field is::

    Context:
    Caroline: I went to a support group.
    Melanie: How was it?
    Query: When did Caroline go?

Without context the query field is the query itself, so scores equal the card's recipe. Hosted services also have
no instruction field: a non-default instruction is folded in front of that text as ``Instruct: {instruction}``
(see ``hosted_query_text``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SYSTEM_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
YES_TOKEN = "yes"
NO_TOKEN = "no"

#: The prompt text between the system prefix and the document, up to and including ``<Document>:``. The document
#: follows with its leading space; the split falls on a pre-tokenization boundary, so tokenizing the two parts
#: apart gives the same tokens as tokenizing them together.
BODY_HEAD = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>:"


def render_context_turn(turn: str | Mapping[str, Any]) -> str:
    """Render one context turn: a string as is, a ``{"role"|"speaker", "content"|"text"}`` mapping as ``role: content``.

    Args:
        turn: The turn.

    Returns:
        The turn's text line.

    Raises:
        TypeError: The turn is neither a string nor a mapping with text.
    """
    if isinstance(turn, str):
        return turn
    if isinstance(turn, Mapping):
        text = turn.get("content", turn.get("text"))
        speaker = turn.get("role", turn.get("speaker"))
        if isinstance(text, str):
            return f"{speaker}: {text}" if speaker else text
    raise TypeError(
        f"a context turn must be a string or a mapping with 'content' (or 'text') and optional 'role' "
        f"(or 'speaker'); got {type(turn).__name__}"
    )


def query_field(query: str, context: Sequence[str] = ()) -> str:
    """The text after ``<Query>:``: the query alone, or the rendered context turns then the query."""
    if not context:
        return query
    return "Context:\n" + "\n".join(context) + "\nQuery: " + query


def body_head(query: str, instruction: str, context: Sequence[str] = ()) -> str:
    """The user-turn text shared by every document of one call, ending with ``<Document>:``."""
    return BODY_HEAD.format(instruction=instruction, query=query_field(query, context))


def document_part(document: str) -> str:
    """The per-document text that follows ``<Document>:`` (the card's template puts one space before it)."""
    return " " + document


def format_pair(query: str, document: str, instruction: str, context: Sequence[str] = ()) -> str:
    """The whole user-turn body of one pair, as the card's ``format_instruction`` writes it."""
    return body_head(query, instruction, context) + document_part(document)


def hosted_query_text(query: str, instruction: str, context: Sequence[str] = ()) -> str:
    """The query text sent to a hosted ``/rerank`` service that has no instruction or context field.

    The context goes in as for the local backend. A non-default instruction is folded in front as
    ``Instruct: {instruction}`` on its own line; the default instruction is left to the service's own template.
    """
    text = query_field(query, context)
    if instruction != DEFAULT_INSTRUCTION:
        text = f"Instruct: {instruction}\n{text}"
    return text
