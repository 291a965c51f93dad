"""Quality regression: each method's edge ROC AUC on the tracr tasks, each ablation paired with
its own ground truth (issue 3). Bars: activation-patching, acdc and ipd >= 0.99 (the ACDC
paper reports 1.000 for ACDC under zero ablation); random within 0.5 +- 0.15 averaged over five
seeds; eap and eap-ig must not fall more than 0.02 below what was measured when this test was
written (the numbers in MEASURED, from `python -m eval.run --methods eap,eap-ig --tasks
tracr-reverse,tracr-proportion --ablation zero|resample`; they are findings, not targets).
"""

from __future__ import annotations

import pytest

from eval.metrics import roc_auc
from methods import get_method
from methods.base import Problem
from patching import PatchableModel
from tasks import get_task

CASES = [(t, a) for t in ("tracr-reverse", "tracr-proportion") for a in ("zero", "resample")]
MEASURED = {  # (task, ablation) -> {method: AUC measured at n = all inputs, seed 0}
    ("tracr-reverse", "zero"): {"eap": 0.945, "eap-ig": 0.987},
    ("tracr-reverse", "resample"): {"eap": 1.000, "eap-ig": 1.000},
    ("tracr-proportion", "zero"): {"eap": 0.500, "eap-ig": 1.000},
    ("tracr-proportion", "resample"): {"eap": 0.833, "eap-ig": 1.000},
}
# The IPD extensions and the graph variants (issue 6), measured the same way; each must stay
# within 0.02 of what it reached. Per-position graphs: 385 edges on reverse, 115 on proportion.
VARIANTS = {
    ("tracr-reverse", "zero"): {
        "ipd-pos": 0.980,
        "eap-pos": 0.939,
        "activation-patching-pos": 0.986,
        "ipd-attn-only": 1.0,
        "ipd-hier": 1.0,
        "ipd-neg": 1.0,
        "ipd-sweep": 1.0,
    },
    ("tracr-reverse", "resample"): {
        "ipd-pos": 1.0,
        "eap-pos": 1.0,
        "activation-patching-pos": 1.0,
        "ipd-attn-only": 1.0,
        "ipd-hier": 1.0,
        "ipd-neg": 1.0,
        "ipd-sweep": 1.0,
    },
    ("tracr-proportion", "zero"): {
        "ipd-pos": 1.0,
        "eap-pos": 0.5,
        "activation-patching-pos": 1.0,
        "ipd-attn-only": 1.0,
        "ipd-hier": 1.0,
        "ipd-neg": 1.0,
        "ipd-sweep": 1.0,
    },
    ("tracr-proportion", "resample"): {
        "ipd-pos": 1.0,
        "eap-pos": 0.667,
        "activation-patching-pos": 1.0,
        "ipd-attn-only": 1.0,
        "ipd-hier": 1.0,
        "ipd-neg": 1.0,
        "ipd-sweep": 1.0,
    },
}
_problems: dict = {}


def setup(task_key: str, ablation: str, method):
    task = get_task(task_key)
    data = task.make_data(task.default_n, seed=0)
    config = method.graph.config(data.clean.shape[1])
    if (task_key, ablation, config) not in _problems:
        pm = PatchableModel(task.load_model(), config)
        problem = Problem.from_task(task, pm, data, ablation)
        truth = pm.graph.edge_mask(task.ground_truth(pm.graph, ablation)).numpy()
        _problems[(task_key, ablation, config)] = (problem, truth)
    return _problems[(task_key, ablation, config)]


def auc(key: str, task_key: str, ablation: str, **config) -> float:
    method = get_method(key, **config)
    problem, truth = setup(task_key, ablation, method)
    return roc_auc(truth, method(problem).numpy(), signed=method.signed)


@pytest.mark.parametrize("task_key,ablation", CASES)
@pytest.mark.parametrize("key", ["activation-patching", "acdc", "ipd"])
def test_exact_methods_recover_the_tracr_circuits(key, task_key, ablation):
    assert auc(key, task_key, ablation) >= 0.99


@pytest.mark.parametrize("task_key,ablation", CASES)
def test_random_is_chance(task_key, ablation):
    mean = sum(auc("random", task_key, ablation, seed=s) for s in range(5)) / 5
    assert 0.35 <= mean <= 0.65


@pytest.mark.parametrize("task_key,ablation", CASES)
@pytest.mark.parametrize("key", ["eap", "eap-ig"])
def test_gradient_methods_do_not_regress(key, task_key, ablation):
    measured = MEASURED[(task_key, ablation)][key]
    assert auc(key, task_key, ablation) >= measured - 0.02


VARIANT_CASES = [(t, a, k, v) for (t, a), d in VARIANTS.items() for k, v in d.items()]


@pytest.mark.slow
@pytest.mark.parametrize("task_key,ablation,key,measured", VARIANT_CASES)
def test_variants_do_not_regress(task_key, ablation, key, measured):
    assert auc(key, task_key, ablation) >= measured - 0.02
