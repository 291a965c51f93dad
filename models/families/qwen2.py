"""Qwen2 / Qwen2.5 (``model_type`` ``qwen2``)."""

from models.families.base import Family

FAMILY = Family(
    name="qwen2",
    model_type="qwen2",
    config_class="Qwen2Config",
    tiny=dict(
        num_hidden_layers=3,
        use_sliding_window=True,
        sliding_window=3,
        max_window_layers=1,
        hidden_size=32,
        intermediate_size=48,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        rms_norm_eps=1e-6,
        hidden_act="silu",
    ),
    description="as Llama, plus q/k/v biases and sliding-window layers when configured",
)
