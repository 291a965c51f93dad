"""Slow reference: interpolated edge patching edge by edge, with TransformerLens hooks.

Independent of ``patching.patched``: it reads source outputs from TL's own hook points
(``hook_embed + hook_pos_embed``, per-head ``hook_result``, ``hook_mlp_out``), and rebuilds
every destination input (``hook_q_input``/``hook_k_input``/``hook_v_input`` or
``hook_attn_in``, ``hook_mlp_in``, and the final residual) as an explicit Python sum over its
incoming edges: ``sum_s m * y_s + (1 - m) * y~_s + constants``.
"""

from __future__ import annotations

import torch

from patching.graph import EdgeGraph


def _set_flags(model, split_qkv: bool) -> None:
    model.set_use_attn_result(True)
    if not model.cfg.attn_only:
        model.set_use_hook_mlp_in(True)
    model.set_use_split_qkv_input(split_qkv)
    model.set_use_attn_in(not split_qkv)


def _reset_flags(model) -> None:
    model.set_use_attn_result(False)
    if not model.cfg.attn_only:
        model.set_use_hook_mlp_in(False)
    model.set_use_split_qkv_input(False)
    model.set_use_attn_in(False)


@torch.no_grad()
def tl_source_outputs(model, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each source's output ``[batch, pos, d_model]`` from a plain TL run with a cache."""
    model.set_use_attn_result(True)
    try:
        _, cache = model.run_with_cache(tokens)
    finally:
        model.set_use_attn_result(False)
    out = {"embed": cache["hook_embed"] + cache["hook_pos_embed"]}
    for layer in range(model.cfg.n_layers):
        for h in range(model.cfg.n_heads):
            out[f"a{layer}.h{h}"] = cache[f"blocks.{layer}.attn.hook_result"][:, :, h]
        if not model.cfg.attn_only:
            out[f"m{layer}"] = cache[f"blocks.{layer}.hook_mlp_out"]
    return out


def reference_patched_logits(
    model, graph: EdgeGraph, tokens: torch.Tensor, mask: torch.Tensor, ablated: dict
) -> torch.Tensor:
    """Logits with every edge interpolated by ``mask`` ([n_edges], position-free or per position).

    ``ablated`` maps source name -> ablated output (broadcastable to [batch, pos, d_model]).
    """
    P = graph.n_pos
    per_pos = graph.config.positions is not None
    m = {}  # (src, dst) -> coefficient, scalar or [pos]
    for i, (s, d) in enumerate(graph.edge_pairs):
        m[(s, d)] = mask[i * P : (i + 1) * P] if per_pos else mask[i]
    live: dict[str, torch.Tensor] = {}
    cfg = model.cfg
    b_o = [blk.attn.b_O for blk in model.blocks]

    def coef(s: str, d: str):
        # edges absent from the graph (MLP edges in an attention-only graph) stay clean
        if (s, d) not in m:
            return torch.tensor(1.0, dtype=mask.dtype)
        c = m[(s, d)]
        return c[None, :, None] if per_pos else c

    def dest_input(d: str, upstream: list[str], n_bo: int) -> torch.Tensor:
        x = sum(b_o[:n_bo], torch.zeros(cfg.d_model, dtype=mask.dtype))
        for s in upstream:
            c = coef(s, d)
            x = x + c * live[s] + (1 - c) * ablated[s]
        return x

    def upstream_of(layer: int, mlp: bool) -> list[str]:
        ups = ["embed"]
        for j in range(layer + (1 if mlp else 0)):
            ups += [f"a{j}.h{h}" for h in range(cfg.n_heads)]
            if j < layer and not cfg.attn_only:
                ups.append(f"m{j}")
        return ups

    split = graph.config.split_qkv
    hooks = []

    def save_embed(act, hook):
        live["embed"] = act
        return act

    def add_pos(act, hook):
        live["embed"] = live["embed"] + act
        return act

    hooks += [("hook_embed", save_embed), ("hook_pos_embed", add_pos)]
    for layer in range(cfg.n_layers):
        ups = upstream_of(layer, mlp=False)

        def attn_in(act, hook, layer=layer, ups=ups, role=None):
            heads = []
            for h in range(cfg.n_heads):
                d = f"a{layer}.h{h}" + (f".{role}" if role else "")
                heads.append(dest_input(d, ups, layer))
            return torch.stack(heads, dim=2)

        if split:
            for r in "qkv":
                hooks.append(
                    (
                        f"blocks.{layer}.hook_{r}_input",
                        lambda a, hook, f=attn_in, r=r: f(a, hook, role=r),
                    )
                )
        else:
            hooks.append((f"blocks.{layer}.hook_attn_in", attn_in))

        def save_heads(act, hook, layer=layer):
            for h in range(cfg.n_heads):
                live[f"a{layer}.h{h}"] = act[:, :, h]
            return act

        hooks.append((f"blocks.{layer}.attn.hook_result", save_heads))
        if not cfg.attn_only:
            mups = upstream_of(layer, mlp=True)

            def mlp_in(act, hook, layer=layer, mups=mups):
                return dest_input(f"m{layer}", mups, layer + 1)

            def save_mlp(act, hook, layer=layer):
                live[f"m{layer}"] = act
                return act

            hooks += [
                (f"blocks.{layer}.hook_mlp_in", mlp_in),
                (f"blocks.{layer}.hook_mlp_out", save_mlp),
            ]

    all_srcs = upstream_of(cfg.n_layers, mlp=False)

    def final(act, hook):
        return dest_input("logits", all_srcs, cfg.n_layers)

    hooks.append((f"blocks.{cfg.n_layers - 1}.hook_resid_post", final))
    _set_flags(model, split)
    try:
        return model.run_with_hooks(tokens, fwd_hooks=hooks)
    finally:
        _reset_flags(model)
