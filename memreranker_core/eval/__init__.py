"""The LoCoMo retrieve-then-rerank benchmark: the model card's memory retrieval table, for your own setup.

Submodules, each with one job (importing this package loads only the standard library):

- ``locomo``: load ``locomo10.json`` into frozen dataclasses (turns, questions, evidence ids repaired);
- ``first_stage``: the first-stage retriever (BM25 from ``bm25s``) that picks each question's candidates;
- ``metrics``: the card's ranking columns through ``ranx``, and the thresholded-set F1;
- ``runner``: retrieve, rerank and time every question; ``summarize`` groups the per-question values;
- ``report``: ``results.json``, a markdown table and a PNG chart;
- ``cli``: ``memreranker eval locomo ...``.

Example:
    >>> from memreranker_core.eval.locomo import load_locomo  # doctest: +SKIP
    >>> from memreranker_core.eval.runner import EvalConfig, run_locomo, summarize  # doctest: +SKIP
    >>> data = load_locomo("locomo10.json")  # doctest: +SKIP
    >>> summary = summarize(run_locomo(data, reranker=None, config=EvalConfig(limit=100)))  # doctest: +SKIP
    >>> round(summary.groups["overall"].first_stage["MAP"], 3)  # doctest: +SKIP
"""
