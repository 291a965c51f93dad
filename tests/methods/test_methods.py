"""Discovery methods: interface over the registry, and each against an independent reference."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from methods import METHODS, get_method
from methods.acdc import acdc_circuit
from methods.ipd import IpdConfig
from patching import PatchableModel
from tasks.base import TaskData, kl_from_clean
from tasks.problem import NoSignalError, Problem
from tests.methods.problems import N, P, last_answer, last_logprob, make_problem
from tests.models import tiny_model
from tests.patching.reference import reference_patched_logits, tl_source_outputs

FAST = {  # small configs so the registry-wide tests stay quick
    "ipd": dict(steps=20),
    "ipd-pos": dict(steps=20),
    "ipd-attn-only": dict(steps=20),
    "ipd-sweep": dict(lams=(0.01, 0.1), ipd=IpdConfig(steps=20)),
    "acdc": dict(n_thresholds=2),
    "ipd-neg": dict(positive=IpdConfig(steps=20)),
    "ipd-hier": dict(coarse_steps=20, fine_steps=10),
    "ugs": dict(steps=20),
}
MASK_LEARNING = ["ipd", "ipd-pos", "ipd-attn-only", "ipd-sweep", "ipd-neg", "ipd-hier", "ugs"]


@pytest.mark.parametrize("key", METHODS.keys())
def test_every_method_scores_every_edge_deterministically(key, problem):
    a = get_method(key, **FAST.get(key, {}))(problem)
    b = get_method(key, **FAST.get(key, {}))(problem)
    assert a.shape == (problem.n_edges,)
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a, b)
    assert a.std() > 0  # not a constant ranking


@pytest.mark.parametrize("key", MASK_LEARNING)
def test_mask_learning_methods_leave_a_json_trace_with_the_standard_keys(key, problem):
    method = get_method(key, **FAST[key])
    method(problem)
    trace = json.loads(json.dumps(method.trace, allow_nan=False))  # JSON-ready, no NaN
    assert isinstance(trace["steps"], int) and trace["steps"] >= 1
    assert isinstance(trace["stopped_early"], bool)
    assert 0 <= trace["final_loss"] < 1  # normalised: the fully ablated model is ~1


@pytest.mark.parametrize("key", METHODS.keys())
def test_config_is_frozen(key):
    method = get_method(key)
    assert dataclasses.is_dataclass(method.config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        method.config.seed = 3


@pytest.mark.parametrize(
    "key,bad",
    [
        ("ipd", dict(lam=-1.0)),
        ("ipd", dict(steps=0)),
        ("ipd", dict(objective="l2")),
        ("ipd", dict(penalty="l2")),
        ("eap-ig", dict(steps=0)),
        ("eap-ig-act", dict(steps=0)),
        ("ieg", dict(steps=0)),
        ("acdc", dict(n_thresholds=0)),
        ("acdc", dict(tau_min=0.0)),
        ("ipd-sweep", dict(lams=(-0.1,))),
        ("activation-patching", dict(max_rows=0)),
    ],
)
def test_bad_config_raises_at_construction(key, bad):
    with pytest.raises(ValueError):
        get_method(key, **bad)


def test_no_signal_is_refused_before_optimising():
    model = tiny_model("gpt2")
    clean = torch.randint(0, 50, (N, P), generator=torch.Generator().manual_seed(0))
    data = TaskData(
        clean,
        clean.clone(),
        torch.ones(N, P, dtype=torch.bool),
        torch.zeros(N, P, dtype=torch.long),
    )
    pm = PatchableModel(model)
    prob = Problem(pm, data, pm.ablate("resample", clean, clean), last_logprob, kl_from_clean)
    for key in ["ipd", "eap", "acdc", "activation-patching"]:
        with pytest.raises(NoSignalError, match="no signal"):
            get_method(key)(prob)

    def nan_metric(logits, data):
        return logits[..., 0, 0] * float("nan")

    prob.metric = nan_metric
    with pytest.raises(NoSignalError, match="not finite"):
        get_method("ipd")(prob)


# ----- EAP ---------------------------------------------------------------------------------


def slow_eap(model, graph, data, ablation_outputs):
    """EAP with TransformerLens hooks: grads at every destination input, outputs from caches."""
    model.set_use_split_qkv_input(True)
    model.set_use_attn_result(True)
    model.set_use_hook_mlp_in(True)
    grads, acts = {}, {}

    def keep(name):
        def hook(act, hook):
            act.retain_grad()
            acts[name] = act
            return act

        return hook

    names = [f"blocks.{layer}.hook_{r}_input" for layer in range(model.cfg.n_layers) for r in "qkv"]
    names += [f"blocks.{layer}.hook_mlp_in" for layer in range(model.cfg.n_layers)]
    names += [f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"]
    try:
        with torch.enable_grad():
            model.requires_grad_(False)
            emb = model.embed.W_E
            emb.requires_grad_(True)  # something must require grad so hooks see graph tensors
            logits = model.run_with_hooks(data.clean, fwd_hooks=[(n, keep(n)) for n in names])
            last_logprob(logits, data).mean().backward()
            emb.requires_grad_(False)
        for n in names:
            grads[n] = acts[n].grad
    finally:
        model.set_use_split_qkv_input(False)
        model.set_use_attn_result(False)
        model.set_use_hook_mlp_in(False)
    clean_out = tl_source_outputs(model, data.clean)
    scores = torch.zeros(graph.n_edges)
    for i, (s, d) in enumerate(graph.edge_pairs):
        if d == "logits":
            g = grads[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"]
        elif d.startswith("m"):
            g = grads[f"blocks.{d[1:]}.hook_mlp_in"]
        else:
            layer, head, role = d[1:].split(".")
            g = grads[f"blocks.{layer}.hook_{role}_input"][:, :, int(head[1:])]
        diff = clean_out[s] - ablation_outputs[s]
        scores[i] = (diff * g).sum()  # the grads already carry the 1/N of the mean metric
    return scores


def test_eap_equals_slow_hook_implementation():
    prob = make_problem(dtype=torch.float64)
    model = prob.model.model
    ablated = tl_source_outputs(model, prob.data.corrupted)
    slow = slow_eap(model, prob.model.graph, prob.data, ablated)
    fast = get_method("eap")(prob)
    torch.testing.assert_close(fast.double(), slow.double(), atol=1e-5, rtol=1e-4)


def test_eap_is_exact_when_the_output_is_linear_in_each_edge():
    lin = _linear_problem()
    eap = get_method("eap")(lin)
    exact = get_method("activation-patching")(lin)
    torch.testing.assert_close(eap.double(), exact.double(), atol=1e-8, rtol=1e-6)
    # and on a nonlinear model the two differ: the test can fail
    prob = make_problem(dtype=torch.float64)
    assert not torch.allclose(
        get_method("eap")(prob), get_method("activation-patching")(prob), atol=1e-4
    )


def _linear_problem():
    """No LayerNorm, attention-only, W_Q = W_K = 0 (uniform attention), metric = answer logit:
    the metric is affine in every single edge's coefficient."""
    from patching.hooked import HookedConfig, HookedModel

    cfg = HookedConfig(
        n_layers=2,
        n_heads=3,
        d_model=12,
        d_head=4,
        d_vocab=20,
        n_ctx=16,
        attn_only=True,
        normalization_type=None,
        dtype=torch.float64,
        seed=0,
    )
    model = HookedModel(cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for block in model.blocks:
            block.attn.W_Q.zero_()
            block.attn.W_K.zero_()
            block.attn.b_Q.zero_()
            block.attn.b_K.zero_()
    g = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 20, (N, P), generator=g)
    corrupt = torch.randint(0, 20, (N, P), generator=g)
    answers = torch.zeros(N, P, dtype=torch.long)
    answers[:, -1] = 3
    mask = torch.zeros(N, P, dtype=torch.bool)
    mask[:, -1] = True
    data = TaskData(clean, corrupt, mask, answers)
    pm = PatchableModel(model)

    def answer_logit(logits, data):
        return logits[..., -1, :].gather(-1, last_answer(logits, data)).squeeze(-1)

    return Problem(pm, data, pm.ablate("resample", clean, corrupt), answer_logit, kl_from_clean)


def test_ieg_completeness():
    prob = make_problem(dtype=torch.float64)
    method = get_method("ieg", steps=64)
    scores = method(prob)
    clean = prob.metric(prob.clean_logits, prob.data).mean().item()
    ablated = prob.metric(prob.ablated_logits, prob.data).mean().item()
    assert scores.sum().item() == pytest.approx(clean - ablated, rel=0.02, abs=1e-3)
    assert method.trace["completeness_gap"] < 0.02
    # one step at alpha = 0.5 is a different estimate from EAP at alpha = 1
    assert not torch.allclose(get_method("ieg", steps=1)(prob), get_method("eap")(prob))


# ----- activation patching -------------------------------------------------------------------


def test_activation_patching_matches_hook_patching():
    prob = make_problem(dtype=torch.float64)
    model, graph = prob.model.model, prob.model.graph
    ablated = tl_source_outputs(model, prob.data.corrupted)
    scores = get_method("activation-patching", max_rows=7)(prob)  # several chunks
    clean = last_logprob(model(prob.data.clean), prob.data).mean()
    for e in torch.randperm(graph.n_edges, generator=torch.Generator().manual_seed(0))[:12]:
        mask = torch.ones(graph.n_edges, dtype=torch.float64)
        mask[e] = 0
        logits = reference_patched_logits(model, graph, prob.data.clean, mask, ablated)
        expected = clean - last_logprob(logits, prob.data).mean()
        assert scores[e].item() == pytest.approx(expected.item(), abs=1e-6)


# ----- ACDC and IPD ----------------------------------------------------------------------------


def test_acdc_removes_edges_without_effect_and_keeps_at_tau_zero(dead_head):
    prob = dead_head
    g = prob.model.graph
    dead = [i for i, (s, _) in enumerate(g.edge_pairs) if s == "a1.h2"]
    kept = acdc_circuit(prob, tau=1e-9)
    assert kept[dead].sum() == 0
    assert kept.sum() > len(g.edge_pairs) // 2  # a tiny tau keeps the edges that matter
    assert acdc_circuit(prob, tau=1e9).sum() == 0  # a huge tau removes everything


def test_ipd_pushes_useless_edges_down_and_keeps_faithfulness(dead_head):
    prob = dead_head
    g = prob.model.graph
    dead = torch.tensor([i for i, (s, _) in enumerate(g.edge_pairs) if s == "a1.h2"])
    method = get_method("ipd", steps=150, lam=0.05)
    scores = method(prob)
    assert scores[dead].mean() < 0.5 * scores.mean()
    assert method.trace["final_loss"] < 0.5  # the learned circuit is far closer than ablated (=1)


def test_ipd_l0_and_metric_objective_run(problem):
    prob = problem
    for kw in [dict(penalty="l0"), dict(objective="metric")]:
        s = get_method("ipd", steps=15, **kw)(prob)
        assert s.shape == (prob.n_edges,) and torch.isfinite(s).all()
