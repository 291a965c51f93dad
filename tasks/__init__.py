"""Task registry: one module (or subpackage) per task, each registered with ``@register_task``.

Importing this package imports every task module found beside it, so the registry is complete
and registering a task means adding one file. Task modules must import optional heavy
dependencies (jax, tracr) lazily, inside the functions that need them.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from tasks.base import TASKS, Task, TaskData, get_task, register_task

__all__ = ["TASKS", "Task", "TaskData", "get_task", "register_task"]

for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if _info.name != "base" and not _info.name.startswith("_"):
        _importlib.import_module(f"tasks.{_info.name}")
