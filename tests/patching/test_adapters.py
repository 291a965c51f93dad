"""Model adapters: which models are read, what they refuse (naming the feature), the graph of
parallel blocks, and reduced precision."""

from __future__ import annotations

import pytest
import torch

from models.families import FAMILIES
from models.random import tiny_hf_model
from patching import EdgeGraph, GraphConfig, PatchableModel
from patching.adapters import to_spec


def test_hooked_transformer_and_hf_gpt2_give_the_same_kind_of_spec():
    from tests.models import tiny_model  # a HookedModel (HookedTransformer layout)

    tl = to_spec(tiny_model("gpt2"))
    hf = to_spec(tiny_hf_model("gpt2"))
    for spec in (tl, hf):
        assert (spec.n_layers, spec.n_heads, spec.d_model, spec.d_head) == (3, 4, 32, 8)
        assert spec.rotary is None and spec.W_pos is not None and not spec.parallel


def test_family_settings_are_read():
    gemma = to_spec(tiny_hf_model("gemma2"))
    assert [la.attn.window for la in gemma.layers] == [3, None, 3]
    assert gemma.layers[0].attn.softcap == 2.0 and gemma.logit_softcap == 5.0
    assert gemma.layers[0].attn.post_norm is not None and gemma.layers[0].mlp.post_norm is not None
    assert gemma.n_kv_heads == 2 and gemma.n_heads == 4
    torch.testing.assert_close(torch.as_tensor(gemma.embed_scale), torch.tensor(32**0.5))
    neox = to_spec(tiny_hf_model("neox"))
    assert neox.parallel and neox.rotary.dim == 4  # rotary_pct 0.5 of d_head 8
    qwen = to_spec(tiny_hf_model("qwen2"))
    assert [la.attn.window for la in qwen.layers] == [None, 3, 3]  # max_window_layers=1
    assert qwen.layers[0].attn.b_Q.abs().sum() > 0  # q/k/v biases


@pytest.mark.parametrize(
    ("cls", "kw", "feature"),
    [
        ("Qwen3Config", dict(head_dim=8), "q_norm"),
        ("MixtralConfig", dict(num_local_experts=2), "mixture-of-experts"),
        (
            "LlamaConfig",
            dict(rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 1e4}),
            "dynamic",
        ),
    ],
)
def test_unsupported_architectures_name_the_feature(cls, kw, feature):
    import transformers

    cfg = getattr(transformers, cls)(
        vocab_size=50,
        hidden_size=32,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        **kw,
    )
    model = transformers.AutoModelForCausalLM.from_config(cfg)
    with pytest.raises(NotImplementedError, match=feature):
        PatchableModel(model)


def test_bad_inputs_are_refused_with_a_reason():
    with pytest.raises(TypeError, match="HookedTransformer"):
        PatchableModel(torch.nn.Linear(2, 2))
    with pytest.raises(OSError, match="could not load"):
        PatchableModel("/nonexistent/model-dir")


def test_parallel_blocks_drop_same_layer_heads_from_the_mlp():
    g = PatchableModel(tiny_hf_model("neox")).graph
    names = set(g.edge_names)
    assert "a0.h0->m0" not in names and "a0.h0->m1" in names and "m0->m1" in names
    assert "embed->m0" in names and "m0->a1.h0.q" in names
    assert g.n_edges == g.expected_n_edges()
    seq = EdgeGraph(3, 4, True, GraphConfig())
    assert seq.n_edges - g.n_edges == 3 * 4  # one edge per head into its own layer's MLP
    assert EdgeGraph(3, 4, True, GraphConfig(positions=2), parallel=True).n_edges == 2 * g.n_edges


def test_grouped_query_attention_keeps_a_k_and_v_destination_per_query_head():
    pm = PatchableModel(tiny_hf_model("llama"))  # 4 query heads share 2 key/value heads
    names = set(pm.graph.edge_names)
    for h in range(4):
        assert f"embed->a1.h{h}.k" in names and f"a0.h{h}->a1.h{h}.v" in names


# bf16/fp16 masks-1 logits against the float32 transformers model, relative to max |logit|.
# Measured on these tiny models (weights std 0.3): bf16 <= 0.066, fp16 <= 0.005; transformers'
# own bf16 run is off by up to 0.10 of max |logit| on the same models.
HALF_TOL = {torch.bfloat16: 0.1, torch.float16: 0.01}


@pytest.mark.parametrize("dtype", list(HALF_TOL))
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_half_precision_masks_one_is_close_to_float32(name, dtype):
    clean, corrupt = (
        torch.randint(0, 50, (3, 6), generator=torch.Generator().manual_seed(s)) for s in (0, 1)
    )
    with torch.no_grad():
        ref = tiny_hf_model(name, torch.float32)(clean).logits
    pm = PatchableModel(tiny_hf_model(name, dtype))
    out = pm(clean, torch.ones(pm.graph.n_edges), pm.ablate("resample", clean, corrupt))
    assert out.dtype == dtype
    rel = (out.float() - ref).abs().max().item() / ref.abs().max().item()
    assert 0 < rel <= HALF_TOL[dtype]
