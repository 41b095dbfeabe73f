"""Everything a run needs before PyTorch: the recipe elaborated, its network compiled and
checked against it, and the data read, split and checked against the network's inputs
and the loss — each mistake a located error before any training starts."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..compiler.errors import DlcError
from ..compiler.frontend.program import Program, load_program
from ..compiler.network import Network
from ..compiler.recipe.elaborate import class_axis, load_recipe
from ..compiler.recipe.recipe import FnCall, Recipe
from . import data as sources
from .data import Dataset, InputSpec

_CLASS_TERMS = ("cross_entropy", "nll", "accuracy", "top_k")


@dataclass
class Plan:
    """A recipe ready to run: its network and its splits (``val``/``test`` may be None)."""

    recipe: Recipe
    network: Network
    train: Dataset
    val: Dataset | None
    test: Dataset | None
    spec_hash: str

    @property
    def steps_per_epoch(self) -> int:
        batches = -(-len(self.train) // self.recipe.batch)
        return -(-batches // self.recipe.accumulate)


def load_recipe_file(
    path: str | Path, recipe: str | None = None, overrides: Mapping[str, Any] | None = None
) -> tuple[Program, Recipe, Network]:
    """Parse ``path``, elaborate its recipe and compile and check the recipe's network."""
    try:
        program = load_program(path)
    except OSError as exc:
        raise DlcError(f"cannot read {path}: {exc.strerror or exc}") from None
    return (program, *load_recipe(program, recipe, overrides))


def prepare(
    path: str | Path,
    recipe: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    test_source: FnCall | None = None,
) -> Plan:
    """The recipe of ``path`` with its data read and checked (raises DlcError)."""
    program, r, net = load_recipe_file(path, recipe, overrides)
    specs = [
        InputSpec(name, t.dtype, tuple(d if isinstance(d, int) else None for d in t.shape))
        for name, t in net.inputs.items()
    ]

    def read(call: FnCall, classes: list[str] | None = None) -> Dataset:
        ds = sources.load(call.name, call.args, r.base, specs, call.span)
        if classes is not None and ds.classes is not None:
            _same_classes(ds, classes, call)
        ds.target = check_target(r, net, ds.target, call)
        return ds

    full = read(r.data)
    held = [f for f in (r.val, r.test) if isinstance(f, float)]
    try:
        parts = sources.split(len(full), held, r.seed)
    except ValueError as exc:
        raise DlcError(f"cannot split {len(full)} examples: {exc}", r.where("val")) from None
    train = full.subset(parts[-1]) if held else full
    cut = iter(parts[:-1])
    splits = {}
    for key in ("val", "test"):
        v = getattr(r, key)
        if isinstance(v, float):
            splits[key] = full.subset(next(cut))
        elif isinstance(v, FnCall):
            splits[key] = read(v, full.classes)
        else:
            splits[key] = None
    if test_source is not None:
        splits["test"] = read(test_source, full.classes)
    return Plan(r, net, train, splits["val"], splits["test"], _hash(program))


def _same_classes(ds: Dataset, classes: list[str], call: FnCall) -> None:
    """Number a split's named classes (image folders, CSV labels) as the training data
    numbers them: a validation folder without some class must not shift the others."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = [name for name in ds.classes if name not in index]
    if unknown:
        raise DlcError(
            f"{call.name}(): class {unknown[0]!r} is not among the training data's classes "
            f"({', '.join(classes)})",
            call.span,
        )
    ds.target = np.array([index[name] for name in ds.classes], dtype=np.int64)[ds.target]
    ds.classes = classes


def _hash(program: Program) -> str:
    """sha256 of the texts of the recipe's file and of every file it imports."""
    texts = {}
    for table in (program.blocks, program.networks, program.functions, program.recipes):
        for d in table.values():
            texts[d.span.source.path] = d.span.source.text
    h = hashlib.sha256()
    for path in sorted(texts):
        h.update(texts[path].encode())
    return h.hexdigest()


def check_target(r: Recipe, net: Network, target: np.ndarray | None, call: FnCall) -> np.ndarray:
    """The target array made to fit every loss and metric term, or a located error.

    A class term (cross_entropy, nll, accuracy, top_k) takes class ids (integers, or
    floats holding whole numbers, as CSV and some files store labels) of the output's
    shape without its class axis, or class probabilities of the output's shape; accuracy
    of a one-logit output is binary (logit > 0 against target > 0.5). Other terms take
    values of the output's shape; an (N,) target fits an (N, 1) output.
    """
    if target is None:
        raise DlcError(f'{call.name}(): the source names no target (add target = "...")', call.span)
    names = list(net.outputs)
    for term in [t for _, t in r.loss] + list(r.metrics):
        out = net.outputs[term.args.get("output") or names[0]]
        ax = class_axis(out.rank, term.args.get("axis"))
        classes = out.shape[ax]
        ids = out.shape[1:ax] + out.shape[ax + 1 :]
        binary = term.name in ("accuracy", "top_k") and classes == 1
        if target.dtype.kind not in "fiub":
            raise DlcError(
                f"{call.name}(): the target's dtype {target.dtype} is not numeric", call.span
            )
        if term.name in _CLASS_TERMS and not binary:
            whole = target.dtype.kind == "f" and _fits(target.shape[1:], ids)
            if whole and np.array_equal(target, np.round(target)):
                target = target.astype(np.int64)  # labels stored as floats
            if target.dtype.kind in "iub":
                target = target.astype(np.int64, copy=False)
                _check_classes(target, classes, term, call, names)
                want, kind = ids, "class ids"
            else:
                want, kind = out.shape[1:], "class probabilities"
        else:
            want, kind = out.shape[1:], "values"
            if target.ndim == 1 and len(want) == 1 and want[0] == 1:
                target = target[:, None]  # (N,) for an (N, 1) output
        if not _fits(target.shape[1:], want):
            shown = "[N" + "".join(f", {d}" for d in want) + "]"
            raise DlcError(
                f"{call.name}(): {term.name} needs {kind} of shape {shown} for the output "
                f"{out}, the target is {list(target.shape)} {target.dtype}",
                call.span,
            )
    if target.dtype.kind == "f":
        target = target.astype(np.float32, copy=False)
    return target


def _fits(shape: tuple, want: tuple) -> bool:
    """Whether an array's per-example shape fits the wanted one (symbolic dims fit any)."""
    return len(shape) == len(want) and all(
        not isinstance(w, int) or w == g for w, g in zip(want, shape)
    )


def _check_classes(target: np.ndarray, classes, term: FnCall, call: FnCall, names) -> None:
    ignore = term.args.get("ignore_index", -100)
    if isinstance(classes, int) and target.size:
        bad = (target != ignore) & ((target < 0) | (target >= classes))
        if bad.any():
            raise DlcError(
                f"{call.name}(): the target holds class {target[bad].flat[0]}, but the output "
                f"{term.args.get('output') or names[0]} has {classes} classes",
                call.span,
            )
