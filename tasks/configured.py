"""Tasks configured with a model (``--model`` on a task that is not tied to one model).

A task class that sets ``takes_model = True`` accepts ``model=NAME_OR_PATH`` in its constructor
and builds its prompts with that model's tokenizer (e.g. :class:`tasks.ioi.IOITask`).
:func:`with_model` registers one configured instance per such task under the key
``<task>@<model>`` (so records, scores and circuits of two models never collide) and returns
the specs a worker process needs to register the same task again (:func:`ensure_configured`).
"""

from __future__ import annotations

import re
from pathlib import Path

from tasks.base import TASKS

SPEC_KIND = "model"


class ModelOptionError(ValueError):
    """``--model`` given for tasks none of which takes a model."""


def configured_key(task: str, model: str) -> str:
    """``<task>@<model's last path component>``, safe in file names (``ioi@Qwen2.5-0.5B``)."""
    name = re.sub(r"[^\w.-]+", "-", Path(model.rstrip("/")).name or model).strip("-")
    return f"{task}@{name or 'model'}"


def takes_model(key: str) -> bool:
    return bool(getattr(TASKS.get(key), "takes_model", False))


def register_configured(task: str, model: str) -> str:
    """Register ``<task>@<model>`` (replacing one of that key); returns the key."""
    cls = TASKS.get(task)
    key = configured_key(task, model)
    if key in TASKS:
        TASKS.unregister(key)

    def factory():
        instance = cls(model=model)
        instance.key = key
        return instance

    TASKS.add(key, factory)
    return key


def with_model(keys: list[str], model: str) -> tuple[list[str], dict[str, dict]]:
    """``keys`` with every task that takes a model configured with ``model``, and their specs
    by new key. Tasks tied to one model (tracr, induction) are left as they are."""
    from models import UnknownModelError, resolve

    if Path(model).exists():  # a local folder: absolute, workers may run elsewhere
        model = str(Path(model).resolve())
    try:
        resolve(model)
    except UnknownModelError as exc:
        raise ModelOptionError(f"--model: {exc}") from None
    out, specs = [], {}
    for k in keys:
        if not takes_model(k):
            out.append(k)
            continue
        key = register_configured(k, model)
        specs[key] = {"kind": SPEC_KIND, "task": k, "model": model}
        out.append(key)
    if not specs:
        raise ModelOptionError(
            f"--model {model}: none of the tasks {', '.join(keys)} takes a model (those that do: "
            f"{', '.join(k for k in TASKS.keys() if takes_model(k)) or 'none'}; a prompt-pair "
            "file in --tasks also does)"
        )
    return out, specs


def is_configured_spec(spec: dict) -> bool:
    return spec.get("kind") == SPEC_KIND


def ensure_configured(spec: dict) -> str:
    """Register the configured task of ``spec`` (from :func:`with_model`) in this process."""
    key = configured_key(spec["task"], spec["model"])
    if key not in TASKS:
        register_configured(spec["task"], spec["model"])
    return key
