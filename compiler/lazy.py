"""Modules imported on first use: the ops modules hold NumPy kernels, but compiling a spec
(``dlc check``, ``dlc summary``) runs none of them and should not pay NumPy's import."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """Stands for the module ``name``; the first attribute read imports it."""

    def __init__(self, name: str):
        super().__init__(name)

    def __getattr__(self, attr: str) -> Any:  # called only for attributes not yet copied
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)  # later reads are plain attribute lookups
        return getattr(module, attr)


def lazy_function(module: str, name: str) -> Callable:
    """``module.name``, a function, imported at its first call."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


numpy = LazyModule("numpy")
