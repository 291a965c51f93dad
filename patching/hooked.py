"""The project's own small hookable transformer: what it used to build with TransformerLens 3's
``HookedTransformer``, without it (TransformerLens 4 removed that class).

Covers the architectures the project builds itself (tracr models, the induction model, the
test models, the GPT-2-small-shaped speed model): GPT-2-style sequential pre-norm blocks,
LayerNorm / LayerNormPre / no normalisation, learned absolute positions, multi-head attention
(causal or bidirectional), ReLU / GELU MLPs or attention-only. The module tree, parameter names,
shapes, registration order and initialisation are those of TransformerLens 3's
``HookedTransformer``, so its state dicts (the shipped tracr and induction weights) load as they
are, a seeded model gets the same weights, and its forward is the same computation (the same
operations in the same order). It is built on TransformerLens's ``HookedRootModule`` and
``HookPoint`` (kept in TransformerLens 4), so ``run_with_hooks``, ``run_with_cache``, hook names
(``hook_embed``, ``blocks.{l}.hook_q_input``, ``blocks.{l}.attn.hook_result``,
``blocks.{l}.hook_mlp_in``, ...) and the ``set_use_*`` switches work as they did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

try:  # TransformerLens 4 exports it at the top level; 3.x keeps it in hook_points
    from transformer_lens.hook_points import HookedRootModule, HookPoint
except ImportError:  # pragma: no cover
    from transformer_lens import HookedRootModule
    from transformer_lens.hook_points import HookPoint


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU (tanh approximation), as TransformerLens writes it."""
    return 0.5 * x * (1.0 + torch.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gelu_fast(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


ACTIVATIONS = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_new": gelu_new,
    "gelu_fast": gelu_fast,
    "silu": F.silu,
}


@dataclass
class HookedConfig:
    """The subset of ``HookedTransformerConfig`` the project uses (same names, same defaults)."""

    n_layers: int
    d_model: int
    n_ctx: int
    d_head: int
    n_heads: int = -1
    d_mlp: int | None = None
    act_fn: str | None = None
    d_vocab: int = -1
    d_vocab_out: int = -1
    eps: float = 1e-5
    normalization_type: str | None = "LN"
    attn_only: bool = False
    attention_dir: str = "causal"
    positional_embedding_type: str = "standard"
    use_attn_scale: bool = True
    attn_scale: float = -1.0
    seed: int | None = None
    initializer_range: float = -1.0
    init_weights: bool = True
    init_mode: str = "gpt2"
    default_prepend_bos: bool = True
    device: str | None = None
    dtype: torch.dtype = torch.float32
    use_attn_result: bool = False
    use_split_qkv_input: bool = False
    use_hook_mlp_in: bool = False
    use_attn_in: bool = False
    model_name: str = "custom"

    def __post_init__(self):
        if self.n_heads == -1:
            self.n_heads = self.d_model // self.d_head
        if self.d_vocab_out == -1:
            self.d_vocab_out = self.d_vocab
        if not self.attn_only:
            if self.d_mlp is None:
                self.d_mlp = 4 * self.d_model
            if self.act_fn not in ACTIVATIONS:
                raise ValueError(f"act_fn {self.act_fn!r}: choose one of {sorted(ACTIVATIONS)}")
        if self.normalization_type not in ("LN", "LNPre", None):
            raise ValueError(f"normalization_type {self.normalization_type!r} is not supported")
        if self.positional_embedding_type != "standard":
            raise ValueError("only standard (learned absolute) positional embeddings")
        if self.attention_dir not in ("causal", "bidirectional"):
            raise ValueError(f"attention_dir {self.attention_dir!r}")
        if self.attn_scale == -1.0:
            self.attn_scale = math.sqrt(self.d_head)
        if self.initializer_range < 0:
            self.initializer_range = 0.8 / np.sqrt(self.d_model)
        if self.device is None:
            self.device = "cpu"
        if self.init_mode != "gpt2":
            raise ValueError("only init_mode='gpt2'")


# ----- components -------------------------------------------------------------------------------
class LayerNormPre(nn.Module):
    def __init__(self, cfg: HookedConfig):
        super().__init__()
        self.cfg, self.eps = cfg, cfg.eps
        self.hook_scale = HookPoint()
        self.hook_normalized = HookPoint()

    def forward(self, x):
        if self.cfg.dtype not in (torch.float32, torch.float64):
            x = x.to(torch.float32)
        x = x - x.mean(-1, keepdim=True)
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        return self.hook_normalized(x / scale).to(self.cfg.dtype)


class LayerNorm(LayerNormPre):
    def __init__(self, cfg: HookedConfig, length: int | None = None):
        super().__init__(cfg)
        length = cfg.d_model if length is None else length
        self.w = nn.Parameter(torch.ones(length, dtype=cfg.dtype))
        self.b = nn.Parameter(torch.zeros(length, dtype=cfg.dtype))

    def forward(self, x):
        return super().forward(x) * self.w + self.b


def _norm(cfg: HookedConfig) -> nn.Module:
    if cfg.normalization_type == "LN":
        return LayerNorm(cfg)
    if cfg.normalization_type == "LNPre":
        return LayerNormPre(cfg)
    return nn.Identity()


class Embed(nn.Module):
    def __init__(self, cfg: HookedConfig):
        super().__init__()
        self.W_E = nn.Parameter(torch.empty(cfg.d_vocab, cfg.d_model, dtype=cfg.dtype))

    def forward(self, tokens):
        return self.W_E[tokens, :]


class PosEmbed(nn.Module):
    def __init__(self, cfg: HookedConfig):
        super().__init__()
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model, dtype=cfg.dtype))

    def forward(self, tokens):
        pos = self.W_pos[: tokens.size(-1), :]
        return pos.unsqueeze(0).expand(tokens.size(0), -1, -1).clone()


class Unembed(nn.Module):
    def __init__(self, cfg: HookedConfig):
        super().__init__()
        self.W_U = nn.Parameter(torch.empty(cfg.d_model, cfg.d_vocab_out, dtype=cfg.dtype))
        self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab_out, dtype=cfg.dtype))
        self.hook_in = HookPoint()
        self.hook_out = HookPoint()

    def forward(self, residual):
        residual = self.hook_in(residual)
        return self.hook_out(F.linear(residual, self.W_U.T.contiguous(), self.b_U))


def _addmm(bias, weight, x):
    """``x @ weight + bias`` over batch dimensions (TransformerLens's ``batch_addmm``)."""
    out = torch.addmm(bias, x.reshape(-1, x.size(-1)), weight)
    return out.view(*x.shape[:-1], weight.shape[-1])


class MLP(nn.Module):
    def __init__(self, cfg: HookedConfig):
        super().__init__()
        self.cfg = cfg
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp, dtype=cfg.dtype))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp, dtype=cfg.dtype))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model, dtype=cfg.dtype))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model, dtype=cfg.dtype))
        self.act_fn = ACTIVATIONS[cfg.act_fn]
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()

    def forward(self, x):
        pre = self.hook_pre(_addmm(self.b_in, self.W_in, x))
        post = self.hook_post(self.act_fn(pre))
        return _addmm(self.b_out, self.W_out, post)


class Attention(nn.Module):
    def __init__(self, cfg: HookedConfig):
        super().__init__()
        self.cfg = cfg
        H, D, dh = cfg.n_heads, cfg.d_model, cfg.d_head
        # registration order as TransformerLens's (W_Q, W_O, b_Q, b_O, then W_K, W_V, b_K, b_V):
        # a model seeded or filled in parameter order gets the same weights
        self.W_Q = nn.Parameter(torch.empty(H, D, dh, dtype=cfg.dtype))
        self.W_O = nn.Parameter(torch.empty(H, dh, D, dtype=cfg.dtype))
        self.b_Q = nn.Parameter(torch.zeros(H, dh, dtype=cfg.dtype))
        self.b_O = nn.Parameter(torch.zeros(D, dtype=cfg.dtype))
        self.W_K = nn.Parameter(torch.empty(H, D, dh, dtype=cfg.dtype))
        self.W_V = nn.Parameter(torch.empty(H, D, dh, dtype=cfg.dtype))
        self.b_K = nn.Parameter(torch.zeros(H, dh, dtype=cfg.dtype))
        self.b_V = nn.Parameter(torch.zeros(H, dh, dtype=cfg.dtype))
        self.attn_scale = cfg.attn_scale if cfg.use_attn_scale else 1.0
        for name in ("k", "q", "v", "z", "attn_scores", "pattern", "result"):
            setattr(self, f"hook_{name}", HookPoint())

    def _linear(self, x, w, b):
        if x.dim() == 4:  # per-head inputs [batch, pos, head, d_model]
            return torch.einsum("bphd,hde->bphe", x, w) + b
        H, D, dh = w.shape
        out = F.linear(x, w.permute(0, 2, 1).reshape(H * dh, D), b.reshape(H * dh))
        return out.reshape(x.shape[0], x.shape[1], H, dh)

    def forward(self, query_input, key_input, value_input):
        q = self.hook_q(self._linear(query_input, self.W_Q, self.b_Q))
        k = self.hook_k(self._linear(key_input, self.W_K, self.b_K))
        v = self.hook_v(self._linear(value_input, self.W_V, self.b_V))
        scores = q.permute(0, 2, 1, 3) @ k.permute(0, 2, 3, 1) / self.attn_scale
        if self.cfg.attention_dir == "causal":
            P = scores.size(-1)
            keep = torch.ones(P, P, dtype=torch.bool, device=scores.device).tril()
            scores = torch.where(keep, scores, torch.tensor(-torch.inf, device=scores.device))
        scores = self.hook_attn_scores(scores)
        pattern = F.softmax(scores, dim=-1)
        pattern = torch.where(torch.isnan(pattern), torch.zeros_like(pattern), pattern)
        pattern = self.hook_pattern(pattern).to(v.dtype)
        z = self.hook_z((pattern @ v.permute(0, 2, 1, 3)).permute(0, 2, 1, 3))
        H, dh = self.cfg.n_heads, self.cfg.d_head
        if not self.cfg.use_attn_result:
            w = self.W_O.reshape(H * dh, -1).T.contiguous()
            return F.linear(z.reshape(z.shape[0], z.shape[1], H * dh), w, self.b_O)
        result = self.hook_result((z.unsqueeze(-1) * self.W_O[None, None]).sum(-2))
        return result.sum(-2) + self.b_O


class TransformerBlock(nn.Module):
    def __init__(self, cfg: HookedConfig, block_index: int):
        super().__init__()
        self.cfg = cfg
        self.ln1 = _norm(cfg)
        if not cfg.attn_only:
            self.ln2 = _norm(cfg)
        self.attn = Attention(cfg)
        if not cfg.attn_only:
            self.mlp = MLP(cfg)
        for name in ("attn_in", "q_input", "k_input", "v_input", "attn_out", "resid_pre",
                     "resid_post"):  # fmt: skip
            setattr(self, f"hook_{name}", HookPoint())
        if not cfg.attn_only:
            self.hook_mlp_in = HookPoint()
            self.hook_mlp_out = HookPoint()
            self.hook_resid_mid = HookPoint()

    def forward(self, resid_pre):
        cfg = self.cfg
        resid_pre = self.hook_resid_pre(resid_pre)

        def per_head():
            return resid_pre.unsqueeze(2).expand(-1, -1, cfg.n_heads, -1).clone()

        attn_in = self.hook_attn_in(per_head()) if cfg.use_attn_in else resid_pre
        if cfg.use_split_qkv_input:
            q_in = self.hook_q_input(per_head())
            k_in = self.hook_k_input(per_head())
            v_in = self.hook_v_input(per_head())
        else:
            q_in = k_in = v_in = attn_in
        attn_out = self.hook_attn_out(self.attn(self.ln1(q_in), self.ln1(k_in), self.ln1(v_in)))
        if cfg.attn_only:
            return self.hook_resid_post(resid_pre + attn_out)
        resid_mid = self.hook_resid_mid(resid_pre + attn_out)
        mlp_in = self.hook_mlp_in(resid_mid.clone()) if cfg.use_hook_mlp_in else resid_mid
        mlp_out = self.hook_mlp_out(self.mlp(self.ln2(mlp_in)))
        return self.hook_resid_post(resid_mid + mlp_out)


# ----- the model --------------------------------------------------------------------------------
class HookedModel(HookedRootModule):
    """A ``HookedTransformer``-compatible model of :class:`HookedConfig` (see the module
    docstring). ``forward(tokens)`` returns logits ``[batch, pos, d_vocab_out]``."""

    def __init__(self, cfg: HookedConfig | dict):
        super().__init__()
        if isinstance(cfg, dict):
            cfg = HookedConfig(**cfg)
        self.cfg = cfg
        self.embed = Embed(cfg)
        self.hook_embed = HookPoint()
        self.pos_embed = PosEmbed(cfg)
        self.hook_pos_embed = HookPoint()
        self.blocks = nn.ModuleList([TransformerBlock(cfg, i) for i in range(cfg.n_layers)])
        if cfg.normalization_type == "LN":
            self.ln_final = LayerNorm(cfg)
        elif cfg.normalization_type == "LNPre":
            self.ln_final = LayerNormPre(cfg)
        self.unembed = Unembed(cfg)
        if cfg.init_weights:
            self.init_weights()
        self.to(cfg.device)
        self.setup()

    def init_weights(self) -> None:
        """TransformerLens's GPT-2 initialisation: every ``W_*`` from N(0, initializer_range),
        in parameter order after ``torch.manual_seed(cfg.seed)`` (when set); biases 0, norm
        weights 1."""
        if self.cfg.seed is not None:
            torch.manual_seed(self.cfg.seed)
        for name, p in self.named_parameters():
            if "W_" in name:
                nn.init.normal_(p, std=self.cfg.initializer_range)

    # the weight views TransformerLens offers (the adapter reads these)
    @property
    def W_E(self):
        return self.embed.W_E

    @property
    def W_pos(self):
        return self.pos_embed.W_pos

    @property
    def W_U(self):
        return self.unembed.W_U

    @property
    def b_U(self):
        return self.unembed.b_U

    def set_use_attn_result(self, value: bool) -> None:
        self.cfg.use_attn_result = value

    def set_use_split_qkv_input(self, value: bool) -> None:
        self.cfg.use_split_qkv_input = value

    def set_use_hook_mlp_in(self, value: bool) -> None:
        assert not self.cfg.attn_only, "Can't use hook_mlp_in with attn_only model"
        self.cfg.use_hook_mlp_in = value

    def set_use_attn_in(self, value: bool) -> None:
        self.cfg.use_attn_in = value

    def to(self, *args, print_details: bool = False, **kwargs):  # TL's signature
        out = super().to(*args, **kwargs)
        p = next(self.parameters(), None)
        if p is not None:  # as TransformerLens: the config follows the weights
            self.cfg.device, self.cfg.dtype = str(p.device), p.dtype
        return out

    def forward(self, tokens, return_type: str | None = "logits", stop_at_layer=None):
        """Logits (``return_type="logits"``), the mean next-token loss (``"loss"``), both, or
        None; with ``stop_at_layer``, the residual stream before that block."""
        if tokens.device.type != self.W_E.device.type:
            tokens = tokens.to(self.W_E.device)
        resid = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(tokens))
        blocks = self.blocks if stop_at_layer is None else self.blocks[:stop_at_layer]
        for block in blocks:
            resid = block(resid)
        if stop_at_layer is not None:
            return resid
        if self.cfg.normalization_type is not None:
            resid = self.ln_final(resid)
        logits = self.unembed(resid)
        if return_type is None:
            return None
        if return_type == "logits":
            return logits
        logp = logits[:, :-1].log_softmax(-1)
        loss = -logp.gather(-1, tokens[:, 1:, None])[..., 0].mean()
        return loss if return_type == "loss" else (logits, loss)


def is_hooked_model(model) -> bool:
    return isinstance(model, HookedModel)
