"""eval.speed.pairs: interleaving, the pair summary and the multiply-add floor by hand."""

from __future__ import annotations

import pytest

from eval.speed.pairs import Shape, floor_ratio, interleaved, pair_summary


def test_pairs_alternate_order_after_a_warm_up():
    calls = []
    p, q = interleaved(lambda: calls.append("p"), lambda: calls.append("q"), 3, "cpu")
    assert calls == ["p", "q", "p", "q", "q", "p", "p", "q"]  # warm-up, then p-q, q-p, p-q
    assert len(p) == len(q) == 3


def test_pair_summary():
    s = pair_summary([1.0, 2.0, 4.0], [1.5, 2.0, 12.0])
    assert s["pair_ratios"] == [1.5, 1.0, 3.0]
    assert (s["ratio_min"], s["ratio_median"], s["ratio_max"]) == (1.0, 1.5, 3.0)
    assert s["ratio_min_over_min"] == 1.5


def test_floor_without_edges_is_the_missing_parameter_gradients():
    """No edges to mix, no grouped heads, the same unembedding: IPD does forward + input
    gradients (2 units) where the plain step also computes parameter gradients (3 units)."""
    shape = Shape(2, 8, 2, 2, 4, 32, 2, 50, 3, 5, n_edges=0, plain_unembeds_all=False)
    assert floor_ratio(shape)["floor_ratio"] == pytest.approx(2 / 3)


def test_floor_counts_grouped_kv_and_mixing():
    base = dict(n_layers=2, d_model=8, n_heads=4, d_head=2, d_mlp=32, mlp_mats=3, vocab=50)
    base.update(batch=3, pos=5, plain_unembeds_all=False)
    mha = floor_ratio(Shape(n_kv_heads=4, n_edges=0, **base))["floor_ratio"]
    gqa = floor_ratio(Shape(n_kv_heads=1, n_edges=0, **base))["floor_ratio"]
    mixed = floor_ratio(Shape(n_kv_heads=4, n_edges=100, **base))
    assert gqa > mha  # per-query-head k/v projections cost IPD more than a grouped plain step
    assert mixed["macs_ipd_mixing"] == 3 * 3 * 5 * 100 * 8
