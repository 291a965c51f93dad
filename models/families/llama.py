"""Llama-3 (``model_type`` ``llama``)."""

from models.families.base import Family

FAMILY = Family(
    name="llama",
    model_type="llama",
    config_class="LlamaConfig",
    tiny=dict(
        num_hidden_layers=3,
        hidden_size=32,
        intermediate_size=48,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        rms_norm_eps=1e-6,
        hidden_act="silu",
    ),
    description="RMSNorm, rotary (incl. Llama-3 frequency scaling), grouped-query attention, "
    "SwiGLU MLP",
    shapes={
        # Llama-3.2-1B's shape with a 32,000-token vocabulary: eval.speed --family llama
        "3.2-1b": dict(
            hidden_size=2048,
            intermediate_size=8192,
            num_hidden_layers=16,
            num_attention_heads=32,
            num_key_value_heads=8,
            head_dim=64,
            vocab_size=32000,
            tie_word_embeddings=True,
            max_position_embeddings=2048,
        ),
    },
)
