"""Gemma-2 (``model_type`` ``gemma2``)."""

from models.families.base import Family

FAMILY = Family(
    name="gemma2",
    model_type="gemma2",
    config_class="Gemma2Config",
    tiny=dict(
        num_hidden_layers=3,
        query_pre_attn_scalar=8,
        sliding_window=3,
        attn_logit_softcapping=2.0,
        final_logit_softcapping=5.0,
        hidden_activation="gelu_pytorch_tanh",
        hidden_size=32,
        intermediate_size=48,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        rms_norm_eps=1e-6,
    ),
    description="RMSNorm with (1 + w), embedding x sqrt(d_model), pre- and post-norms, "
    "attention-logit and final-logit soft-caps, GeGLU, sliding window on alternating layers",
    norm_one_plus=True,  # Gemma's RMSNorm stores w for a (1 + w) scale
    # the post-norms' outputs are the attention and MLP contributions
    output_modules=lambda model: [
        (b.post_attention_layernorm, b.post_feedforward_layernorm) for b in model.model.layers
    ],
)
