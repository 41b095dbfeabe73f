"""Training what a spec describes (LANGUAGE §11): ``train`` recipes run on the PyTorch
backend's modules.

    from dlc.training import fit
    result = fit("specs/digits.dl", lr=0.1)       # the file's train section, --set lr=0.1
    result.history[-1]["val.accuracy"], result.weights, result.run_dir

``fit``, ``evaluate`` and ``search`` are the code path of ``dlc train``, ``dlc eval`` and
``dlc search``. They are
imported on first use, so that ``dlc.training.data`` and ``dlc.training.plot`` work without
PyTorch.
"""

from __future__ import annotations

__all__ = ["evaluate", "fit", "search"]


def __getattr__(name: str):
    if name == "search":
        from .tune import search

        return search
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'dlc.training' has no attribute {name!r}")
