"""The project's own model class (:mod:`patching.hooked`), which replaced TransformerLens 3's
``HookedTransformer`` (gone in TransformerLens 4): the shipped tracr and induction weights give
the logits they gave as ``HookedTransformer``s, and, where TransformerLens 3 is installed, a
``HookedModel`` equals a ``HookedTransformer`` of the same config bit for bit (parameters from
the same seed, logits, every cached activation under every ``set_use_*`` switch)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from patching.hooked import HookedConfig, HookedModel

REFERENCE = Path(__file__).parents[1] / "data" / "shipped_logits.safetensors"


def _reference() -> dict[str, torch.Tensor]:
    """Logits of each shipped model built as a TransformerLens 3.9 ``HookedTransformer`` (stored
    once, before the switch), on seeded random tokens stored beside them."""
    from safetensors.torch import load_file

    return load_file(str(REFERENCE))


@pytest.mark.parametrize(
    "name", ["hist", "pair_balance", "proportion", "reverse", "shuffle_dyck", "sort_unique"]
)
def test_shipped_tracr_weights_give_the_stored_logits(name):
    from tasks import tracr_programs

    ref = _reference()
    model = tracr_programs.load_model(name)
    assert isinstance(model, HookedModel)
    with torch.no_grad():
        logits = model(ref[f"{name}.tokens"])
    torch.testing.assert_close(logits, ref[f"{name}.logits"], atol=1e-6, rtol=1e-6)


def test_shipped_induction_weights_give_the_stored_logits():
    from tasks.induction import model as induction_model

    ref = _reference()
    model = induction_model.load()
    assert isinstance(model, HookedModel)
    with torch.no_grad():
        logits = model(ref["induction.tokens"])
    torch.testing.assert_close(logits, ref["induction.logits"], atol=1e-6, rtol=1e-6)


KINDS = [
    dict(act_fn="gelu_new", normalization_type="LN"),
    dict(attn_only=True, normalization_type="LN"),
    dict(act_fn="relu", normalization_type=None),
    dict(act_fn="relu", normalization_type="LNPre", attention_dir="bidirectional"),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: "-".join(f"{v}" for v in k.values()))
def test_equals_transformer_lens_3_hooked_transformer(kind, dtype):
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError:
        pytest.skip("TransformerLens 4: no HookedTransformer to compare with")
    base = dict(n_layers=2, n_heads=3, d_model=12, d_head=4, d_mlp=16, d_vocab=10, n_ctx=8,
                seed=3, dtype=dtype, **kind)  # fmt: skip
    theirs = HookedTransformer(HookedTransformerConfig(**base)).eval()
    ours = HookedModel(HookedConfig(**base)).eval()
    pt, po = dict(theirs.named_parameters()), dict(ours.named_parameters())
    assert list(pt) == list(po)  # same names, same order
    assert all(torch.equal(pt[k], po[k]) for k in pt)  # same initialisation
    tokens = torch.randint(0, 10, (2, 7), generator=torch.Generator().manual_seed(0))
    switches = [(), ("attn_result",), ("attn_in",), ("attn_result", "split_qkv_input")]
    if not kind.get("attn_only"):
        switches.append(("attn_result", "split_qkv_input", "hook_mlp_in"))
    for flags in switches:
        for m in (theirs, ours):
            for f in flags:
                getattr(m, f"set_use_{f}")(True)
        try:
            lt, ct = theirs.run_with_cache(tokens)
            lo, co = ours.run_with_cache(tokens)
        finally:
            for m in (theirs, ours):
                for f in flags:
                    getattr(m, f"set_use_{f}")(False)
        assert torch.equal(lt, lo), flags
        assert set(ct.keys()) <= set(co.keys()), set(ct.keys()) - set(co.keys())
        for k in ct.keys():
            assert torch.equal(ct[k], co[k]), (flags, k)
    assert torch.equal(theirs(tokens, return_type="loss"), ours(tokens, return_type="loss"))
    assert torch.equal(theirs(tokens, stop_at_layer=1), ours(tokens, stop_at_layer=1))
    # and a HookedTransformer's state dict loads into it (the shipped weights' format)
    fresh = HookedModel(HookedConfig(**{**base, "seed": 7}))
    result = fresh.load_state_dict(theirs.state_dict(), strict=False)
    assert not result.missing_keys
    assert torch.equal(fresh(tokens), theirs(tokens))


def test_switches_and_hooks():
    model = HookedModel(HookedConfig(n_layers=2, d_model=8, n_ctx=6, d_head=4, d_vocab=7,
                                     act_fn="relu", seed=0))  # fmt: skip
    tokens = torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(0))
    plain = model(tokens)
    model.set_use_split_qkv_input(True)
    model.set_use_attn_result(True)
    model.set_use_hook_mlp_in(True)
    _, cache = model.run_with_cache(tokens)
    assert cache["blocks.1.hook_q_input"].shape == (2, 5, 2, 8)
    assert cache["blocks.0.attn.hook_result"].shape == (2, 5, 2, 8)
    torch.testing.assert_close(model(tokens), plain)  # the switches change no output
    zeroed = model.run_with_hooks(
        tokens, fwd_hooks=[("blocks.1.hook_mlp_out", lambda act, hook: torch.zeros_like(act))]
    )
    assert not torch.allclose(zeroed, plain)
    wide = model.to(torch.float64)
    assert wide.cfg.dtype == torch.float64 and wide(tokens).dtype == torch.float64
    with pytest.raises(ValueError, match="positional"):
        HookedConfig(n_layers=1, d_model=8, n_ctx=4, d_head=4, act_fn="relu",
                     positional_embedding_type="rotary")  # fmt: skip
