"""A resolved training recipe: every key's value checked, every default filled in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Span
from .schema import LOWER_IS_BETTER, metric_name


@dataclass(frozen=True, eq=False)
class FnCall:
    """A call of a recipe function with all its arguments (``sgd(lr=0.05, momentum=0.9,
    ...)``); ``spans`` locates each argument the user wrote, for later errors."""

    name: str
    args: dict[str, Any]
    span: Span | None = None
    spans: dict[str, Span] = field(default_factory=dict)

    def where(self, arg: str) -> Span | None:
        return self.spans.get(arg, self.span)

    def to_json(self) -> dict:
        return {"name": self.name, "args": _plain(self.args)}


@dataclass(frozen=True, eq=False)
class ModelRef:
    """``model = Net(width = 16)``: a network of the program and its arguments."""

    network: str
    args: dict[str, Any]
    span: Span | None = None


@dataclass(eq=False)
class Recipe:
    """A ``train`` section, elaborated (LANGUAGE §11)."""

    name: str
    path: Path  # the file that defines it: data paths are relative to its folder
    params: dict[str, Any]
    model: ModelRef
    data: FnCall
    loss: tuple[tuple[float, FnCall], ...]
    val: float | FnCall | None = None
    test: float | FnCall | None = None
    metrics: tuple[FnCall, ...] = ()
    optimizer: FnCall | None = None
    schedule: FnCall | None = None
    batch: int = 32
    epochs: int = 1
    accumulate: int = 1
    clip: float | None = None
    precision: str = "fp32"
    seed: int = 0
    deterministic: bool = False
    augment: tuple[FnCall, ...] = ()
    early_stop: FnCall | None = None
    checkpoint: FnCall | None = None
    span: Span | None = None
    spans: dict[str, Span] = field(default_factory=dict)  # where each key was set

    @property
    def base(self) -> Path:
        return self.path.parent

    def where(self, key: str) -> Span | None:
        return self.spans.get(key, self.span)

    def logged(self) -> list[str]:
        """The metric names an epoch logs: ``train.loss``, ``train.accuracy``, ``val.loss``,
        ... (``val.*`` only with a validation split)."""
        names = ["loss", *(metric_name(m.name, m.args) for m in self.metrics)]
        splits = ("train", "val") if self.val is not None else ("train",)
        return [f"{s}.{n}" for s in splits for n in names]

    def to_json(self) -> dict:
        """The resolved recipe as plain JSON values (recipe.json, ``--format json``)."""

        def value(v):
            return v.to_json() if isinstance(v, FnCall) else _plain(v)

        return {
            "name": self.name,
            "params": _plain(self.params),
            "model": {"network": self.model.network, "args": _plain(self.model.args)},
            "data": value(self.data),
            "val": value(self.val),
            "test": value(self.test),
            "loss": [{"weight": w, **term.to_json()} for w, term in self.loss],
            "metrics": [m.to_json() for m in self.metrics],
            "optimizer": value(self.optimizer),
            "schedule": value(self.schedule),
            "batch": self.batch,
            "epochs": self.epochs,
            "accumulate": self.accumulate,
            "clip": self.clip,
            "precision": self.precision,
            "seed": self.seed,
            "deterministic": self.deterministic,
            "augment": [a.to_json() for a in self.augment],
            "early_stop": value(self.early_stop),
            "checkpoint": value(self.checkpoint),
        }


def lower_is_better(metric: str, mode: str = "auto") -> bool:
    """Whether smaller values of ``metric`` (``val.loss``, ``val.aux.accuracy``) are
    better: ``mode`` if given, else by the metric's kind."""
    if mode != "auto":
        return mode == "min"
    return metric.rsplit(".", 1)[-1] in LOWER_IS_BETTER


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    return v
