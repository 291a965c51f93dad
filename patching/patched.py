"""The one-pass interpolated-patch forward over a TransformerLens ``HookedTransformer``.

Contract (shared/DESIGN.md): destination ``d`` reads

    x_d = sum_{s in in(d)} m_sd * y_s + (1 - m_sd) * y~_s  (+ constants)
        = base_d + sum_s m_sd * (y_s - y~_s),    base_d = sum_s y~_s + constants

where ``y_s`` is source ``s``'s output in the current pass and ``y~_s`` its ablated output.
The differences ``y_s - y~_s`` of the current pass live in one preallocated stack
``[n_masks, n_sources, batch, pos, d_model]``; every destination block of a layer is computed
with one batched matmul over the stack's upstream rows (:class:`_Mix`), so a step costs about a
forward plus a backward pass of the model, whatever the number of edges. The stack is written
in place and read through a custom autograd function, so no per-layer copy of it is kept for
the backward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

from patching.graph import EdgeGraph, GraphConfig
from patching.support import check_supported


@dataclass
class AblatedSources:
    """Ablated source outputs for one clean batch, and the block inputs they imply.

    values: ``[n_sources, batch | 1, pos, d_model]`` ablated output of every source.
    block_inputs: per destination block key (``attn{l}``, ``mlp{l}``, ``logits``): the input
        that the block reads when all its edges are ablated, ``[batch | 1, pos, d_model]``.
    """

    kind: str
    values: Float[Tensor, "n_src b pos d_model"]
    block_inputs: dict[str, Float[Tensor, "b pos d_model"]]


class _Emit(torch.autograd.Function):
    """Write a source block's ``y - y~`` into the stack and return a dependency token.

    Every :class:`_Mix` that reads the block takes the token as an input, so autograd runs this
    node's backward only after all of them have accumulated their share of the block's
    gradient into the shared gradient buffer (in place, fused into their matmul); the backward
    then hands that buffer slice to the block's producer. No per-consumer gradient copies, no
    separate accumulation passes.
    """

    @staticmethod
    def forward(ctx, out, vals, stack_slice, grad_slice, rows=None):
        if rows is not None:  # only these rows of the slice (live heads); the others stay 0
            stack_slice.index_copy_(
                1, rows, (out - vals).expand(stack_slice.shape[0], *out.shape[1:])
            )
        elif vals is None:
            stack_slice.copy_(out)
        elif out.shape == stack_slice.shape:
            torch.sub(out, vals, out=stack_slice)
        else:  # a mask-independent block (the embedding) broadcast over the masks
            stack_slice.copy_(out - vals)
        ctx.grad_slice, ctx.rows = grad_slice, rows
        ctx.out_shape = out.shape
        return out.new_zeros(())

    @staticmethod
    def backward(ctx, _token_grad):
        acc, rows = ctx.grad_slice, ctx.rows
        if rows is not None:
            g = acc.index_select(1, rows).sum_to_size(ctx.out_shape)
            acc.zero_()
            return g, None, None, None, None
        g = acc.sum_to_size(ctx.out_shape) if acc.shape != ctx.out_shape else acc.clone()
        acc.zero_()  # leave the buffer clean, so a second backward through the graph is exact
        return g, None, None, None, None


class _Mix(torch.autograd.Function):
    """``x[k, r] = base + sum_j masks[k, r, j(, p)] * stack[k, j]`` over the upstream rows.

    Reads the stack in place (no copy is saved for backward: rows are never rewritten once
    emitted) and accumulates the stack's gradient into the shared buffer in place.
    """

    @staticmethod
    def forward(ctx, masks, base, stack, grad, *tokens):
        ctx.save_for_backward(masks)
        ctx.stack, ctx.grad, ctx.n_tokens = stack, grad, len(tokens)
        return _mix_product(masks, stack) + base

    @staticmethod
    def backward(ctx, grad_out):
        (masks,) = ctx.saved_tensors
        stack, grad = ctx.stack, ctx.grad
        K, J = stack.shape[0], stack.shape[1]
        grad_masks = None
        if masks.dim() == 3:  # masks [K, R, J]; stack [K, J, B, P, D]
            g = grad_out.reshape(K, grad_out.shape[1], -1)
            if ctx.needs_input_grad[0]:
                grad_masks = torch.bmm(g, stack.reshape(K, J, -1).mT)
            grad.view(K, J, -1).baddbmm_(masks.mT, g)
        else:  # per position: masks [K, R, J, P]
            if ctx.needs_input_grad[0]:
                grad_masks = torch.einsum("krbpd,kjbpd->krjp", grad_out, stack)
            grad.add_(torch.einsum("krjp,krbpd->kjbpd", masks, grad_out))
        tokens = [grad_out.new_zeros(()) for _ in range(ctx.n_tokens)]
        return (grad_masks, None, None, None, *tokens)


def _mix_product(masks: Tensor, stack: Tensor) -> Tensor:
    """masks [K, R, J] or [K, R, J, P] with stack [K, J, B, P, D] -> [K, R, B, P, D]."""
    K, J = stack.shape[0], stack.shape[1]
    if masks.dim() == 3:
        out = torch.bmm(masks, stack.reshape(K, J, -1))
        return out.view(K, masks.shape[1], *stack.shape[2:])
    return torch.einsum("krjp,kjbpd->krbpd", masks, stack)


def _fused_norm(module) -> Callable[[Tensor], Tensor]:
    """A fused-kernel equivalent of a TransformerLens normalisation module (same formula)."""
    kind = type(module).__name__
    eps = getattr(module, "eps", None)
    table: dict[str, Callable[[Tensor], Tensor]] = {
        "LayerNorm": lambda x: F.layer_norm(x, x.shape[-1:], module.w, module.b, eps),
        "LayerNormPre": lambda x: F.layer_norm(x, x.shape[-1:], None, None, eps),
        "RMSNorm": lambda x: F.rms_norm(x, x.shape[-1:], module.w, eps),
        "RMSNormPre": lambda x: F.rms_norm(x, x.shape[-1:], None, eps),
        "Identity": lambda x: x,
    }
    if kind not in table:
        raise NotImplementedError(f"normalisation module {kind} is not supported by the graph")
    return table[kind]


class PatchableModel:
    """A ``HookedTransformer`` with an edge graph and an exact one-pass patched forward.

    The model's parameters are frozen (``requires_grad=False``): discovery learns edge
    coefficients, never weights, and a backward pass must not spend time on weight gradients.
    """

    def __init__(self, model, graph_config: GraphConfig | None = None) -> None:
        check_supported(model.cfg)
        model.requires_grad_(False)
        self.model = model
        self.cfg = model.cfg
        self.graph = EdgeGraph(
            n_layers=model.cfg.n_layers,
            n_heads=model.cfg.n_heads,
            has_mlp=not model.cfg.attn_only,
            config=graph_config or GraphConfig(),
        )
        self._prepare_weights()

    def with_graph(self, graph_config: GraphConfig) -> PatchableModel:
        """The same model under another graph (q/k/v split, positions, attention-only)."""
        return PatchableModel(self.model, graph_config)

    @property
    def device(self) -> torch.device:
        return self.model.W_E.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.W_E.dtype

    def _prepare_weights(self) -> None:
        """Stack per-head projection weights once, so each layer needs one bmm for q, k, v."""
        self._w_in, self._b_in, self._w_out, self._b_o = [], [], [], []
        H = self.cfg.n_heads
        for block in self.model.blocks:
            a = block.attn
            WQ, WK, WV = a.W_Q.detach(), a.W_K.detach(), a.W_V.detach()
            bQ, bK, bV = a.b_Q.detach(), a.b_K.detach(), a.b_V.detach()
            if self.graph.config.split_qkv:  # [3H, d_model, d_head]
                self._w_in.append(torch.cat([WQ, WK, WV], 0))
                self._b_in.append(torch.cat([bQ, bK, bV], 0)[:, None, :])
            else:  # [H, d_model, 3 d_head]
                self._w_in.append(torch.cat([WQ, WK, WV], -1))
                self._b_in.append(torch.cat([bQ, bK, bV], -1).view(H, 1, -1))
            self._w_out.append(a.W_O.detach())
            self._b_o.append(a.b_O.detach())
        self._attn_scale = [blk.attn.attn_scale for blk in self.model.blocks]
        self._ln1 = [_fused_norm(blk.ln1) for blk in self.model.blocks]
        self._ln2 = [
            _fused_norm(blk.ln2) if hasattr(blk, "ln2") else None for blk in self.model.blocks
        ]
        has_final = self.cfg.normalization_type is not None and hasattr(self.model, "ln_final")
        self._ln_final = _fused_norm(self.model.ln_final) if has_final else (lambda x: x)
        self._consts = self._block_constants()

    def _block_constants(self) -> dict[str, Tensor]:
        """Constant input of each destination block: the ``b_O`` of every upstream layer."""
        bo = torch.stack(self._b_o).cumsum(0)  # bo[l] = sum of b_O over layers <= l
        zero = torch.zeros_like(bo[0])
        consts = {}
        for layer in range(self.graph.n_layers):
            consts[f"attn{layer}"] = bo[layer - 1] if layer else zero
            consts[f"mlp{layer}"] = bo[layer]
        consts["logits"] = bo[-1]
        return consts

    # ----- ablations ---------------------------------------------------------------------------
    @torch.no_grad()
    def source_outputs(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "n_src b p d"]:
        """Every source's output in the unpatched model (all masks 1)."""
        return self._run(tokens, None, None, collect=True)

    @torch.no_grad()
    def ablate(
        self,
        kind: str,
        clean: Int[Tensor, "batch pos"],
        corrupted: Int[Tensor, "batch pos"] | None = None,
        reference: Int[Tensor, "ref pos"] | None = None,
    ) -> AblatedSources:
        """Ablated source outputs: ``resample`` (from ``corrupted``, paired with ``clean``),
        ``mean`` (per-position mean over ``reference``) or ``zero``."""
        from patching.ablation import ABLATION_KINDS

        if kind not in ABLATION_KINDS:
            raise ValueError(f"unknown ablation {kind!r}; choose one of {sorted(ABLATION_KINDS)}")
        values = ABLATION_KINDS[kind](self, clean, corrupted, reference)
        return AblatedSources(kind, values, self._ablated_inputs(values))

    def _ablated_inputs(self, values: Tensor) -> dict[str, Tensor]:
        cum = torch.cumsum(values, dim=0)  # cum[i] = sum of the first i+1 sources
        return {
            key: cum[block.n_up - 1] + self._consts[key] for key, block in self.graph.blocks.items()
        }

    # ----- masks ---------------------------------------------------------------------------------
    def full_masks(self, masks: Tensor) -> Tensor:
        """Validate ``[n_edges]`` or ``[n_masks, n_edges]`` and return ``[K, n_full * n_pos]``."""
        g = self.graph
        if not isinstance(masks, Tensor):
            raise TypeError(f"masks must be a torch.Tensor, got {type(masks).__name__}")
        if masks.dim() not in (1, 2) or masks.shape[-1] != g.n_edges:
            raise ValueError(
                f"masks must have shape [{g.n_edges}] or [n_masks, {g.n_edges}] for this graph "
                f"({g.config}), got {list(masks.shape)}"
            )
        if torch.isnan(masks).any():
            raise ValueError("masks contain NaN; every edge coefficient must be a number in [0, 1]")
        m = masks.reshape(-1, g.n_edges).to(device=self.device, dtype=self.dtype)
        if g.kept_pair_index is None:
            return m
        P = g.n_pos
        full = torch.ones(m.shape[0], g.n_full_pairs, P, dtype=m.dtype, device=m.device)
        idx = g.kept_pair_index.to(m.device)
        full = full.index_copy(1, idx, m.view(m.shape[0], -1, P))
        return full.view(m.shape[0], -1)

    def _block_masks(self, full: Tensor, key: str) -> Tensor:
        b = self.graph.blocks[key]
        P = self.graph.n_pos
        m = full[:, b.start * P : b.stop * P]
        if self.graph.config.positions is None:
            return m.view(full.shape[0], b.rows, b.n_up)
        return m.view(full.shape[0], b.rows, b.n_up, P)

    # ----- the forward ----------------------------------------------------------------------------
    def forward(
        self,
        tokens: Int[Tensor, "batch pos"],
        masks: Float[Tensor, "*n_masks n_edges"],
        ablation: AblatedSources,
        out_positions: Int[Tensor, " batch"] | None = None,
        logit_positions: Int[Tensor, " n"] | None = None,
        live: Bool[Tensor, " n_sources"] | None = None,
    ) -> Float[Tensor, "*n_masks batch *pos d_vocab"]:
        """Logits of the patched model in one pass, differentiable in ``masks``.

        masks: ``[n_edges]`` or ``[n_masks, n_edges]``; each mask is applied to the whole batch.
        out_positions: unembed only this position per example (returns ``[..., batch, d_vocab]``).
        logit_positions: unembed only these positions (the others' logits are 0): the output
            keeps its ``[..., batch, pos, d_vocab]`` shape, at a fraction of the unembedding cost.
        live: compute only these sources (heads, MLPs); the others output their ablated value
            (as if every edge out of them were 0) at no compute. Exact when the masks of the
            edges out of non-live sources are 0; the fine stage of ``ipd-hier`` uses it.
        """
        single = masks.dim() == 1
        full = self.full_masks(masks)
        self._check_tokens(tokens, ablation)
        if live is not None and (live.dtype != torch.bool or live.shape != (self.graph.n_sources,)):
            raise ValueError(
                f"live must be a bool tensor [{self.graph.n_sources}] over the sources"
            )
        logits = self._run(tokens, full, ablation, out_positions, logit_positions, live=live)
        return logits[0] if single else logits

    __call__ = forward

    def _check_tokens(self, tokens: Tensor, ablation: AblatedSources) -> None:
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be [batch, pos], got shape {list(tokens.shape)}")
        vb, vp = ablation.values.shape[1], ablation.values.shape[2]
        if vp != tokens.shape[1] or vb not in (1, tokens.shape[0]):
            raise ValueError(
                f"the ablation was built for batch {vb} x pos {vp} but tokens are "
                f"{tuple(tokens.shape)}; build it from this batch with model.ablate(...)"
            )
        P = self.graph.config.positions
        if P is not None and tokens.shape[1] != P:
            raise ValueError(
                f"this per-position graph has {P} positions; tokens have {tokens.shape[1]}"
            )

    def _run(
        self,
        tokens,
        full,
        ablation,
        out_positions=None,
        logit_positions=None,
        collect=False,
        live=None,
    ):
        m, g, cfg = self.model, self.graph, self.cfg
        B, P = tokens.shape
        K = 1 if full is None else full.shape[0]
        D, H = cfg.d_model, cfg.n_heads
        embed = m.embed(tokens) + m.pos_embed(tokens)  # [B, P, D]
        shape = (K, g.n_sources, B, P, D)
        alloc = torch.empty if live is None else torch.zeros  # non-live rows stay y - y~ = 0
        stack = alloc(shape, dtype=embed.dtype, device=embed.device)
        needs_grad = full is not None and full.requires_grad and torch.is_grad_enabled()
        grad = torch.zeros(shape, dtype=embed.dtype, device=embed.device) if needs_grad else stack
        vals = None if ablation is None else ablation.values
        tokens_ = []

        def emit(out: Tensor, start: int, rows: Tensor | None = None, n: int | None = None) -> None:
            # out: [K | 1, n, B, P, D] source outputs; the stack holds y - y~ (y when collecting)
            n = out.shape[1] if n is None else n
            sl = slice(start, start + n)
            v = None if vals is None else vals[sl].unsqueeze(0)
            if rows is not None:
                v = v.index_select(1, rows)
            tokens_.append(_Emit.apply(out, v, stack[:, sl], grad[:, sl], rows))

        def read(key: str, rows: Tensor | None = None) -> Tensor:
            b = g.blocks[key]
            if full is None:  # unpatched: sum of all upstream outputs + constants
                x = stack[:, : b.n_up].sum(1, keepdim=True).expand(K, b.rows, B, P, D)
                return x + self._consts[key]
            masks = self._block_masks(full, key)
            if rows is not None:
                masks = masks.index_select(1, rows)
            up = slice(0, b.n_up)
            return _Mix.apply(
                masks, ablation.block_inputs[key], stack[:, up], grad[:, up], *tokens_
            )

        emit(embed[None, None], 0)
        for layer, block in enumerate(m.blocks):
            start = 1 + layer * g.srcs_per_layer
            heads = None if live is None else live[start : start + H].nonzero().flatten()
            if heads is None or len(heads) == H:
                x = read(f"attn{layer}")  # [K, R, B, P, D]
                emit(self._attention(layer, x, K, B, P), start)
            elif len(heads):  # only the live heads: fewer mixing rows, projections, attention
                x = read(f"attn{layer}", rows=self._attn_rows(heads))
                emit(self._attention(layer, x, K, B, P, heads), start, rows=heads, n=H)
            if g.has_mlp and (live is None or live[start + H]):
                x = read(f"mlp{layer}")[:, 0].reshape(K * B, P, D).contiguous()
                out = block.mlp(self._ln2[layer](x)).view(K, 1, B, P, D)
                emit(out, 1 + layer * g.srcs_per_layer + H)
        if collect:
            return stack[0]
        x = read("logits")[:, 0]  # [K, B, P, D]
        if out_positions is not None:
            x = x[:, torch.arange(B, device=x.device), out_positions]  # [K, B, D]
        elif logit_positions is not None:
            part = m.unembed(self._ln_final(x[:, :, logit_positions]))  # [K, B, n, V]
            out = part.new_zeros(K, B, P, part.shape[-1])
            return out.index_copy(2, logit_positions, part)
        return m.unembed(self._ln_final(x))

    def _attn_rows(self, heads: Tensor) -> Tensor:
        """Destination rows of ``heads`` in an attention block (q, k, v rows when split)."""
        if not self.graph.config.split_qkv:
            return heads
        H = self.cfg.n_heads
        return torch.cat([heads, heads + H, heads + 2 * H])

    def _attention(
        self, layer: int, x: Tensor, K: int, B: int, P: int, heads: Tensor | None = None
    ) -> Tensor:
        """Per-head attention outputs ``z_h W_O[h]`` (no b_O) from per-destination inputs,
        for every head or only ``heads``."""
        cfg = self.cfg
        dh, D = cfg.d_head, cfg.d_model
        w_in, b_in, w_out = self._w_in[layer], self._b_in[layer], self._w_out[layer]
        if heads is not None:
            rows = self._attn_rows(heads)
            w_in, b_in, w_out = w_in[rows], b_in[rows], w_out[heads]
        H = w_out.shape[0]
        R = x.shape[1]
        N = K * B * P
        xn = self._ln1[layer](x.transpose(0, 1).reshape(R, N, D))
        proj = torch.baddbmm(b_in, xn, w_in)
        if self.graph.config.split_qkv:  # [3H, N, dh]
            q, k, v = (t.view(H, K * B, P, dh) for t in proj.split(H, 0))
        else:  # [H, N, 3dh]
            q, k, v = (t.reshape(H, K * B, P, dh) for t in proj.split(dh, -1))
        scores = q @ k.transpose(-1, -2) / self._attn_scale[layer]
        if self.cfg.attention_dir == "causal":
            future = torch.ones(P, P, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(future, -torch.inf)
        pattern = torch.softmax(scores, dim=-1)
        pattern = torch.where(torch.isnan(pattern), torch.zeros_like(pattern), pattern)
        z = pattern @ v  # [H, KB, P, dh]
        out = torch.bmm(z.reshape(H, N, dh), w_out)  # [H, N, D]
        return out.view(H, K, B, P, D).transpose(0, 1)
