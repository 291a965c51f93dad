"""Method configs check their field types at construction (``methods/config.py``)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from methods import METHODS, MethodConfig, get_method
from methods.config import check_types
from methods.descent import DescentConfig, PenaltyDescentConfig
from methods.edge_pruning import EdgePruningConfig
from methods.ipd import IpdConfig
from methods.ipd_hier import IpdHierConfig
from methods.ipd_neg import IpdNegConfig
from methods.ipd_sweep import IpdSweepConfig
from methods.sp import SpConfig


def test_an_int_for_a_float_field_is_converted():
    cfg = IpdConfig(init=6, lam=0)
    assert type(cfg.init) is float and cfg.init == 6.0 and type(cfg.lam) is float
    assert IpdSweepConfig(lams=(1, 0.5)).lams == (1.0, 0.5)


@pytest.mark.parametrize(
    "bad,field",
    [
        (dict(init="6"), "init"),
        (dict(steps=3.5), "steps"),
        (dict(steps=True), "steps"),
        (dict(progress=1), "progress"),
        (dict(objective=None), "objective"),
        (dict(lam=True), "lam"),
        (dict(seed=1.0), "seed"),
    ],
)
def test_ipd_config_rejects_wrong_types_naming_the_field(bad, field):
    with pytest.raises(TypeError, match=rf"IpdConfig\.{field} must be"):
        IpdConfig(**bad)


@pytest.mark.parametrize(
    "make",
    [
        lambda: IpdSweepConfig(lams=[0.1, 1.0]),  # a list: configs are frozen and hashable
        lambda: IpdSweepConfig(lams=(0.1, "1")),
        lambda: IpdSweepConfig(ipd=dict(steps=3)),
        lambda: IpdNegConfig(positive=IpdHierConfig()),
        lambda: IpdHierConfig(shared="ipd"),
    ],
)
def test_nested_and_tuple_fields_are_checked(make):
    with pytest.raises(TypeError):
        make()


def test_optional_and_unknown_annotations():
    @dataclass(frozen=True)
    class Optional(MethodConfig):
        limit: float | None = None

        def __post_init__(self) -> None:
            check_types(self)

    assert Optional().limit is None and Optional(limit=2).limit == 2.0
    with pytest.raises(TypeError, match="limit"):
        Optional(limit="2")


@pytest.mark.parametrize("key", METHODS.keys())
def test_every_default_config_passes(key):
    check_types(get_method(key).config)


@pytest.mark.parametrize("key", METHODS.keys())
def test_every_method_config_checks_types_at_construction(key):
    with pytest.raises(TypeError, match="seed"):
        get_method(key, seed="0")


def test_descent_configs_share_their_fields_and_keep_their_defaults():
    common = dict(steps=300, init=3.0, beta=2 / 3, gamma=-0.1, zeta=1.1)
    plateau = dict(patience=40, tol=1e-3)
    expected = {
        IpdConfig: dict(common, **plateau, lam=0.01, lr=0.05, warmup=0.2),
        SpConfig: dict(common, **plateau, lam=0.05, lr=0.1, warmup=0.2),
        EdgePruningConfig: dict(common, lr=0.1, warmup=0.5, lagrangian_lr=0.5),
    }
    for cls, defaults in expected.items():
        cfg = cls()
        assert isinstance(cfg, DescentConfig)
        assert {k: getattr(cfg, k) for k in defaults} == defaults, cls.__name__
    assert not hasattr(EdgePruningConfig(), "lam") and isinstance(SpConfig(), PenaltyDescentConfig)
    assert SpConfig(lam=0.2, warmup=0.5, steps=10).schedule().warmup_steps == 5
