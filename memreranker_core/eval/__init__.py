"""The LoCoMo retrieve-then-rerank benchmark: the model card's memory retrieval table, for your own setup.

Submodules, each with one job (importing this package loads only the standard library):

- ``locomo``: load ``locomo10.json`` into frozen dataclasses (turns, questions, evidence ids repaired);
- ``first_stage``: the first stages that rank each question's turns: BM25 (``bm25s``), dense (sentence-transformers)
  and hybrid (reciprocal rank fusion of the two with ``ranx.fuse``);
- ``embeddings``: the dense first stage's embeddings, cached on disk per conversation;
- ``metrics``: the card's ranking columns through ``ranx``, and the thresholded-set F1;
- ``significance``: ranx's paired tests between two systems on the same questions;
- ``runner``: pick each question's candidates (the ``first-stage`` or the ``oracle`` pool), rerank and time them;
  ``summarize`` groups the per-question values and tests reranked against first stage;
- ``report``: ``results.json``, a markdown table, a PNG chart and ``per_question.jsonl``;
- ``compare``: two saved runs side by side (``memreranker eval compare``).

The command line is ``memreranker_core.cli.eval`` (``memreranker eval locomo ...``, ``memreranker eval compare``).

Example:
    >>> from memreranker_core.eval.locomo import load_locomo  # doctest: +SKIP
    >>> from memreranker_core.eval.runner import EvalConfig, run_locomo, summarize  # doctest: +SKIP
    >>> data = load_locomo("locomo10.json")  # doctest: +SKIP
    >>> summary = summarize(run_locomo(data, reranker=None, config=EvalConfig(limit=100)))  # doctest: +SKIP
    >>> round(summary.groups["overall"].first_stage["MAP"], 3)  # doctest: +SKIP
"""
