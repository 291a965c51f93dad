"""The generic registry: decorator registration, duplicates, suggestions, unregistering."""

from __future__ import annotations

import pytest

from core.registry import Registry, UnknownKeyError


def test_registry_suggests_and_refuses_duplicates():
    class Base:
        pass

    reg = Registry("thing", Base)

    @reg.register("activation-patching")
    class A(Base):
        pass

    with pytest.raises(ValueError, match="already registered"):
        reg.register("activation-patching")(type("B", (Base,), {}))
    with pytest.raises(TypeError):
        reg.register("x")(int)
    with pytest.raises(UnknownKeyError, match="Did you mean: activation-patching"):
        reg.get("activation-patchin")
    assert reg.resolve("all") == ["activation-patching"]


def test_registry_unregister_removes_and_returns_the_entry():
    class Base:
        pass

    reg = Registry("thing", Base)
    cls = reg.register("a")(type("A", (Base,), {}))
    assert reg.unregister("a") is cls
    assert "a" not in reg and reg.keys() == []
    with pytest.raises(UnknownKeyError):
        reg.unregister("a")
