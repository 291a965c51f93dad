"""The first write-up's scheme for an interpolated-patch step: O(n_layers) forward passes.

Kept as the speed baseline that ``eval.speed`` compares the one-pass forward against (and
tested for agreement with it). Pass ``j`` runs the model with TransformerLens hooks up to layer
``j``, replacing layer ``j``'s query/key/value and MLP inputs by their interpolated values built
from the source outputs captured (with gradients) in passes ``0..j``; a last step builds the
final residual the same way. Upstream patches reach layer ``j`` only through the cache, which is
why one pass per layer is needed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from patching.graph import EdgeGraph
from patching.patched import AblatedSources


def layerwise_logits(
    model, graph: EdgeGraph, tokens: Tensor, masks: Tensor, ablation: AblatedSources
) -> Tensor:
    """Logits under position-free ``masks`` [n_edges] (q/k/v split, MLPs in the graph)."""
    if graph.config.positions is not None or not graph.config.split_qkv:
        raise ValueError("the layer-by-layer scheme supports only the default graph (q/k/v split)")
    if graph.kept_pair_index is not None:
        raise ValueError("the layer-by-layer scheme supports only graphs with MLPs included")
    cfg = model.cfg
    H = cfg.n_heads
    abl = ablation.values  # [n_src, b, p, d]
    outputs: list[Tensor] = []  # source outputs with grad, in stack order
    embed = model.hook_embed(model.embed(tokens)) + model.hook_pos_embed(model.pos_embed(tokens))
    outputs.append(embed)

    def mixed(key: str) -> Tensor:
        b = graph.blocks[key]
        m = masks[b.start : b.stop].view(b.rows, b.n_up)
        diff = torch.stack(outputs[: b.n_up]) - abl[: b.n_up]  # [n_up, batch, pos, d]
        return ablation.block_inputs[key] + torch.einsum("rs,sbpd->rbpd", m, diff)

    model.set_use_split_qkv_input(True)
    model.set_use_attn_result(True)
    if not cfg.attn_only:
        model.set_use_hook_mlp_in(True)
    try:
        for layer in range(cfg.n_layers):
            x = mixed(f"attn{layer}").view(3, H, *tokens.shape, cfg.d_model)
            captured: dict[str, Tensor] = {}

            def put(role: int, x=x):
                return lambda act, hook: x[role].permute(1, 2, 0, 3)

            def grab(name: str, captured=captured):
                def hook(act, hook):
                    captured[name] = act
                    return act

                return hook

            hooks = [(f"blocks.{layer}.hook_{r}_input", put(i)) for i, r in enumerate("qkv")]
            hooks.append((f"blocks.{layer}.attn.hook_result", grab("heads")))
            if not cfg.attn_only:

                def mlp_in(act, hook, layer=layer, captured=captured):
                    outputs.extend(captured["heads"].unbind(2))
                    return mixed(f"mlp{layer}")[0]

                hooks += [
                    (f"blocks.{layer}.hook_mlp_in", mlp_in),
                    (f"blocks.{layer}.hook_mlp_out", grab("mlp")),
                ]
            model.run_with_hooks(tokens, fwd_hooks=hooks, stop_at_layer=layer + 1)
            if cfg.attn_only:
                outputs.extend(captured["heads"].unbind(2))
            else:
                outputs.append(captured["mlp"])
        x = mixed("logits")[0]
        if cfg.normalization_type is not None:
            x = model.ln_final(x)
        return model.unembed(x)
    finally:
        model.set_use_split_qkv_input(False)
        model.set_use_attn_result(False)
        if not cfg.attn_only:
            model.set_use_hook_mlp_in(False)
