"""GPT-NeoX / Pythia (``model_type`` ``gpt_neox``)."""

from models.families.base import Family

FAMILY = Family(
    name="neox",
    model_type="gpt_neox",
    config_class="GPTNeoXConfig",
    tiny=dict(
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=64,
        rotary_pct=0.5,
        use_parallel_residual=True,
    ),
    description="partial rotary, LayerNorm, parallel attention and MLP (use_parallel_residual)",
    output_modules=lambda model: [(b.attention, b.mlp) for b in model.gpt_neox.layers],
)
