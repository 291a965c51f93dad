"""TransformerLens ``TransformerBridge`` (TransformerLens 4, and 3.9's preview of it) as a model
source: read through the ``transformers`` model it wraps. No ``HookedTransformer`` needed, so
this file also runs under TransformerLens 4."""

from __future__ import annotations

import pytest
import torch

from models.random import tiny_hf_model
from patching import PatchableModel


def _bridge_dir(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tiny_hf_model("llama").save_pretrained(tmp_path)
    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(50)}, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="t0", pad_token="t0")
    fast.save_pretrained(tmp_path)
    return tmp_path


def test_transformer_bridge_is_read_through_its_transformers_model(tmp_path):
    bridge_mod = pytest.importorskip("transformer_lens.model_bridge")
    bridge = bridge_mod.TransformerBridge.boot_transformers(
        str(_bridge_dir(tmp_path)), device="cpu"
    )
    clean, corrupt = (
        torch.randint(0, 50, (2, 6), generator=torch.Generator().manual_seed(s)) for s in (0, 1)
    )
    for compat in (False, True):  # compatibility mode rewrites the weights (centring, folding)
        if compat:
            bridge.enable_compatibility_mode()
        pm = PatchableModel(bridge)
        ab = pm.ablate("resample", clean, corrupt)
        with torch.no_grad():
            own, own_corrupt = bridge(clean), bridge(corrupt)
        out = pm(clean, torch.ones(pm.graph.n_edges), ab)
        assert (out - own).abs().max().item() <= 1e-4
        assert (
            pm(clean, torch.zeros(pm.graph.n_edges), ab) - own_corrupt
        ).abs().max().item() <= 1e-4
        assert (own - own_corrupt).abs().max().item() > 1.0
