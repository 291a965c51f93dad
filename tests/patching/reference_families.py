"""Slow reference for ``transformers`` models: interpolated edge patching, edge by edge.

Written for clarity, not speed, and independent of ``patching.patched`` and
``patching.adapters``: it calls the model's own modules (embeddings, q/k/v/o projections, MLPs,
rotary module, LayerNorms, ``lm_head``), writes RMSNorm, rotation, attention and soft-caps out by
hand, and builds every destination's input as an explicit Python sum over its incoming edges:
``sum_s m * y_s + (1 - m) * y~_s + constants``. Each query head is computed on its own from its
own q, k and v inputs (grouped-query attention: head h projects its k/v input with key/value
head ``h // group``). A post-norm belongs to its source: a head's output is
``(z_h W_O[h] + b_O / H) * w / rms(layer output)``.
"""

from __future__ import annotations

import math

import torch


def _rms(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _rotate(x, cos, sin):
    """Rotary on the first ``cos.shape[-1]`` features (rotate-half convention)."""
    r = cos.shape[-1]
    x_rot, x_pass = x[..., :r], x[..., r:]
    x1, x2 = x_rot[..., : r // 2], x_rot[..., r // 2 :]
    rotated = x_rot * cos + torch.cat([-x2, x1], -1) * sin
    return torch.cat([rotated, x_pass], -1)


class _Family:
    """How to call one family's modules. Subclasses fill in the per-family pieces."""

    def __init__(self, model):
        self.model, self.cfg = model, model.config

    # defaults (Llama / Qwen2 / Gemma-2 layout)
    def base(self):
        return self.model.model

    def blocks(self):
        return list(self.base().layers)

    def embed(self, tokens):
        return self.base().embed_tokens(tokens)

    def cos_sin(self, x, P):
        rot = self.base().rotary_emb
        cos, sin = rot(x, torch.arange(P).unsqueeze(0))
        return cos[0], sin[0]

    def n_heads(self):
        return self.cfg.num_attention_heads

    def n_kv(self):
        return self.cfg.num_key_value_heads

    def ln1(self, blk, x):
        return _rms(x, blk.input_layernorm.weight, blk.input_layernorm.variance_epsilon)

    def ln2(self, blk, x):
        n = blk.post_attention_layernorm
        return _rms(x, n.weight, n.variance_epsilon)

    def proj(self, blk, x, role):
        lin = {"q": blk.self_attn.q_proj, "k": blk.self_attn.k_proj, "v": blk.self_attn.v_proj}
        y = lin[role](x)
        return y.view(*x.shape[:-1], -1, self.d_head())

    def d_head(self):
        return self.blocks()[0].self_attn.head_dim

    def out_weight(self, blk):  # [D, H*dh] (nn.Linear layout) and bias
        return blk.self_attn.o_proj.weight, blk.self_attn.o_proj.bias

    def scale(self, blk):
        return blk.self_attn.scaling

    def softcap(self, blk):
        return None

    def window(self, blk):
        return getattr(blk.self_attn, "sliding_window", None)

    def post_attn(self, blk):
        return None  # (weight, eps) of an RMS post-norm, or None

    def mlp(self, blk, x):
        return blk.mlp(x)

    def final(self, x):
        n = self.base().norm
        return self.model.lm_head(_rms(x, n.weight, n.variance_epsilon))

    parallel = False


class _Gemma2(_Family):
    def embed(self, tokens):
        return self.base().embed_tokens(tokens)  # the module multiplies by sqrt(d_model)

    def ln1(self, blk, x):
        n = blk.input_layernorm
        return _rms(x, 1 + n.weight, n.eps)

    def ln2(self, blk, x):
        n = blk.pre_feedforward_layernorm
        return _rms(x, 1 + n.weight, n.eps)

    def softcap(self, blk):
        return self.cfg.attn_logit_softcapping

    def post_attn(self, blk):
        n = blk.post_attention_layernorm
        return 1 + n.weight, n.eps

    def mlp(self, blk, x):
        n = blk.post_feedforward_layernorm
        return _rms(blk.mlp(x), 1 + n.weight, n.eps)

    def final(self, x):
        n = self.base().norm
        logits = self.model.lm_head(_rms(x, 1 + n.weight, n.eps))
        cap = self.cfg.final_logit_softcapping
        return logits if cap is None else cap * torch.tanh(logits / cap)


class _NeoX(_Family):
    def base(self):
        return self.model.gpt_neox

    def embed(self, tokens):
        return self.base().embed_in(tokens)

    def n_kv(self):
        return self.n_heads()

    def d_head(self):
        return self.cfg.hidden_size // self.n_heads()

    def ln1(self, blk, x):
        return blk.input_layernorm(x)

    def ln2(self, blk, x):
        return blk.post_attention_layernorm(x)

    def proj(self, blk, x, role):
        dh = self.d_head()
        y = blk.attention.query_key_value(x).view(*x.shape[:-1], self.n_heads(), 3 * dh)
        i = "qkv".index(role)
        return y[..., i * dh : (i + 1) * dh]

    def out_weight(self, blk):
        return blk.attention.dense.weight, blk.attention.dense.bias

    def scale(self, blk):
        return self.d_head() ** -0.5

    def window(self, blk):
        return None

    def final(self, x):
        return self.model.get_output_embeddings()(self.base().final_layer_norm(x))

    @property
    def parallel(self):
        return self.cfg.use_parallel_residual


class _GPT2(_Family):
    def base(self):
        return self.model.transformer

    def blocks(self):
        return list(self.base().h)

    def embed(self, tokens):
        return self.base().wte(tokens) + self.base().wpe(torch.arange(tokens.shape[1]))

    def cos_sin(self, x, P):
        return None

    def n_heads(self):
        return self.cfg.n_head

    def n_kv(self):
        return self.cfg.n_head

    def d_head(self):
        return self.cfg.n_embd // self.cfg.n_head

    def ln1(self, blk, x):
        return blk.ln_1(x)

    def ln2(self, blk, x):
        return blk.ln_2(x)

    def proj(self, blk, x, role):
        y = blk.attn.c_attn(x).split(self.cfg.n_embd, -1)["qkv".index(role)]
        return y.view(*x.shape[:-1], self.n_heads(), self.d_head())

    def out_weight(self, blk):  # Conv1D stores [in, out]: transpose to nn.Linear layout
        return blk.attn.c_proj.weight.T, blk.attn.c_proj.bias

    def scale(self, blk):
        return 1 / math.sqrt(self.d_head())

    def window(self, blk):
        return None

    def final(self, x):
        return self.model.lm_head(self.base().ln_f(x))


FAMILIES = {"gpt2": _GPT2, "gpt_neox": _NeoX, "llama": _Family, "qwen2": _Family, "gemma2": _Gemma2}


def _attend(q, k, v, scale, softcap, window):
    """One head: q, k, v ``[B, P, dh]`` -> z ``[B, P, dh]``."""
    scores = q @ k.transpose(-1, -2) * scale
    if softcap is not None:
        scores = softcap * torch.tanh(scores / softcap)
    P = q.shape[1]
    i = torch.arange(P)
    allowed = i[None, :] <= i[:, None]
    if window is not None:
        allowed = allowed & (i[:, None] - i[None, :] < window)
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, -1) @ v


@torch.no_grad()
def reference_logits(model, graph, tokens, mask=None, ablated=None, collect=False):
    """Logits of ``model`` with every edge of ``graph`` interpolated by ``mask`` ([n_edges],
    position-free or per position) between the current pass and ``ablated`` (source name ->
    output broadcastable to [batch, pos, d_model]). ``mask=None``: the unpatched model.
    ``collect=True`` returns the source outputs instead (dict name -> [batch, pos, d_model])."""
    fam = FAMILIES[model.config.model_type](model)
    H, Hkv, dh = fam.n_heads(), fam.n_kv(), fam.d_head()
    group = H // Hkv
    P = tokens.shape[1]
    per_pos = graph.config.positions is not None
    coef = {}
    if mask is not None:
        n = graph.n_pos
        for i, (s, d) in enumerate(graph.edge_pairs):
            coef[(s, d)] = mask[i * n : (i + 1) * n][None, :, None] if per_pos else mask[i]
    y: dict[str, torch.Tensor] = {"embed": fam.embed(tokens)}
    consts = []  # constant terms (attention output biases without a post-norm), per layer

    def dest_input(d, upstream, n_const):
        x = sum(consts[:n_const], torch.zeros_like(y["embed"]))
        for s in upstream:
            if mask is None or (s, d) not in coef:  # unpatched, or an edge held clean
                x = x + y[s]
            else:
                c = coef[(s, d)]
                x = x + c * y[s] + (1 - c) * ablated[s]
        return x

    upstream = ["embed"]
    cos_sin = fam.cos_sin(y["embed"], P)
    for layer, blk in enumerate(fam.blocks()):
        attn_up = list(upstream)
        w_o, b_o = fam.out_weight(blk)
        outs = []
        for h in range(H):
            name = f"a{layer}.h{h}"
            if graph.config.split_qkv:
                xs = {r: dest_input(f"{name}.{r}", attn_up, layer) for r in "qkv"}
            else:
                x = dest_input(name, attn_up, layer)
                xs = {r: x for r in "qkv"}
            q = fam.proj(blk, fam.ln1(blk, xs["q"]), "q")[..., h, :]
            k = fam.proj(blk, fam.ln1(blk, xs["k"]), "k")[..., h // group, :]
            v = fam.proj(blk, fam.ln1(blk, xs["v"]), "v")[..., h // group, :]
            if cos_sin is not None:
                q, k = _rotate(q, *cos_sin), _rotate(k, *cos_sin)
            z = _attend(q, k, v, fam.scale(blk), fam.softcap(blk), fam.window(blk))
            outs.append(z @ w_o[:, h * dh : (h + 1) * dh].T)
        bias = torch.zeros_like(outs[0][0, 0]) if b_o is None else b_o
        post = fam.post_attn(blk)
        if post is None:
            consts.append(bias)
            for h in range(H):
                y[f"a{layer}.h{h}"] = outs[h]
        else:
            consts.append(torch.zeros_like(bias))
            total = sum(outs) + bias
            inv = torch.rsqrt(total.pow(2).mean(-1, keepdim=True) + post[1])
            for h in range(H):
                y[f"a{layer}.h{h}"] = (outs[h] + bias / H) * inv * post[0]
        heads = [f"a{layer}.h{h}" for h in range(H)]
        if blk_has_mlp(blk):
            mlp_up = attn_up if fam.parallel else attn_up + heads
            x = dest_input(f"m{layer}", mlp_up, layer if fam.parallel else layer + 1)
            y[f"m{layer}"] = fam.mlp(blk, fam.ln2(blk, x))
            upstream = attn_up + heads + [f"m{layer}"]
        else:
            upstream = attn_up + heads
    if collect:
        return y
    return fam.final(dest_input("logits", upstream, len(consts)))


def blk_has_mlp(blk) -> bool:
    return hasattr(blk, "mlp")


def reference_ablated(model, graph, kind, corrupted):
    """Ablated source outputs for ``kind`` (resample / mean / zero), from the reference itself."""
    outs = reference_logits(model, graph, corrupted, collect=True)
    if kind == "resample":
        return outs
    if kind == "mean":
        return {k: v.mean(0, keepdim=True) for k, v in outs.items()}
    return {k: torch.zeros_like(v[:1]) for k, v in outs.items()}
