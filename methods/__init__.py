"""Method registry: one module per method, each registered with ``@register_method``.

Importing this package imports every method module beside it, so the registry is complete.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from methods.base import METHODS, Method, MethodConfig, get_method, register_method
from tasks.problem import Problem

__all__ = ["METHODS", "Method", "MethodConfig", "Problem", "get_method", "register_method"]

for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if _info.name != "base" and not _info.name.startswith("_"):
        _importlib.import_module(f"methods.{_info.name}")
