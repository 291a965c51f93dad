"""Speed benchmarks of the patched forward: one IPD step against a plain forward + backward.

``python -m eval.speed`` (:mod:`eval.speed.__main__`) runs :mod:`eval.speed.step` on a
GPT-2-small-shaped model, or :mod:`eval.speed.family` with ``--family llama``. The interleaved
pair timings and the multiply-add floor are :mod:`eval.speed.pairs`; the O(n_layers) scheme it
is compared against is :mod:`eval.speed.layerwise`. docs/speed.md has the numbers.
"""
