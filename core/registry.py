"""A small generic registry: decorator registration, duplicate refusal, "did you mean" lookups.

Used for tasks (``@register_task``) and methods (``@register_method``); one place to register,
and ``--methods all`` is simply the sorted registry.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownKeyError(KeyError):
    """An unknown registry key; the message suggests the closest registered keys."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(self, kind: str, base: type) -> None:
        self.kind = kind
        self.base = base
        self._items: dict[str, type[T] | Callable[[], T]] = {}

    def register(self, key: str) -> Callable[[type[T]], type[T]]:
        def deco(cls: type[T]) -> type[T]:
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise TypeError(f"{cls!r} must subclass {self.base.__name__} to be a {self.kind}")
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} is already registered by {self._items[key]}")
            cls.key = key
            self._items[key] = cls
            return cls

        return deco

    def add(self, key: str, factory: Callable[[], T]) -> Callable[[], T]:
        """Register a configured entry: ``factory()`` returns a ready instance (e.g. one task
        class serving many data files, :func:`tasks.file_task.register_file_task`). ``get(key)``
        returns the factory, so ``get(key)()`` is an instance whether a class or a factory was
        registered; the instance's ``key`` should be ``key``."""
        if not callable(factory):
            raise TypeError(f"a {self.kind} factory must be callable, got {factory!r}")
        if key in self._items:
            raise ValueError(f"{self.kind} {key!r} is already registered by {self._items[key]}")
        self._items[key] = factory
        return factory

    def unregister(self, key: str) -> type[T]:
        """Remove ``key`` and return what it held (plugins and tests that register temporarily)."""
        cls = self.get(key)
        del self._items[key]
        return cls

    def keys(self) -> list[str]:
        return sorted(self._items)

    def get(self, key: str) -> type[T]:
        if key not in self._items:
            close = difflib.get_close_matches(key, self.keys(), n=3, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UnknownKeyError(
                f"unknown {self.kind} {key!r}.{hint} Registered: {', '.join(self.keys())}"
            )
        return self._items[key]

    def resolve(self, spec: str) -> list[str]:
        """``all`` or a comma list -> validated keys (UnknownKeyError on the first bad one).
        ``all`` leaves out entries whose class sets ``in_all = False`` (too costly to run by
        default; they run when named). An entry with ``*`` or ``?`` is a pattern
        (``siit-*``): every registered key it matches, sorted; a pattern matching none is an
        error."""
        if spec.strip() == "all":
            return [k for k in self.keys() if getattr(self._items[k], "in_all", True)]
        keys = []
        for k in (k.strip() for k in spec.split(",")):
            if not k:
                continue
            if "*" in k or "?" in k:
                matched = fnmatch.filter(self.keys(), k)
                if not matched:
                    raise UnknownKeyError(
                        f"no {self.kind} matches {k!r}. Registered: {', '.join(self.keys())}"
                    )
                keys += matched
            else:
                self.get(k)
                keys.append(k)
        if not keys:
            raise UnknownKeyError(f"no {self.kind} named in {spec!r}")
        return list(dict.fromkeys(keys))  # a key named twice runs once

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __iter__(self):
        return iter(self.keys())
