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


def test_registry_patterns_expand_to_the_keys_they_match():
    class Base:
        pass

    reg = Registry("thing", Base)
    for key in ("siit-a-s0", "siit-a-s1", "siit-b-s0", "tracr-a"):
        reg.add(key, Base)
    assert reg.resolve("siit-*") == ["siit-a-s0", "siit-a-s1", "siit-b-s0"]
    assert reg.resolve("siit-?-s0,tracr-a,siit-a-s0") == ["siit-a-s0", "siit-b-s0", "tracr-a"]
    with pytest.raises(UnknownKeyError, match="no thing matches 'ioi-\\*'"):
        reg.resolve("ioi-*")
