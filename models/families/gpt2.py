"""GPT-2 (``model_type`` ``gpt2``)."""

from models.families.base import Family

FAMILY = Family(
    name="gpt2",
    model_type="gpt2",
    config_class="GPT2Config",
    tiny=dict(n_embd=32, n_layer=3, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0),
    description="learned positions, LayerNorm, GELU MLP, sequential blocks",
    # GPT-2 small's shape is random/gpt2-small, a patching.hooked.HookedModel (models.random)
    output_modules=lambda model: [(b.attn, b.mlp) for b in model.transformer.h],
)
