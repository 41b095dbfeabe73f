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

    def read(call: FnCall) -> Dataset:
        ds = sources.load(call.name, call.args, r.base, specs, call.span)
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
            splits[key] = read(v)
        else:
            splits[key] = None
    if test_source is not None:
        splits["test"] = read(test_source)
    return Plan(r, net, train, splits["val"], splits["test"], _hash(program))


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
    """The target array made to fit every loss and metric term, or a located error."""
    if target is None:
        raise DlcError(f'{call.name}(): the source names no target (add target = "...")', call.span)
    names = list(net.outputs)
    for term in [t for _, t in r.loss] + list(r.metrics):
        out = net.outputs[term.args.get("output") or names[0]]
        per = out.shape[1:]
        want: tuple
        if term.name in _CLASS_TERMS and target.dtype.kind in "iub":
            ax = class_axis(out.rank, term.args.get("axis"))
            want, kind = out.shape[1:ax] + out.shape[ax + 1 :], "class ids"
            target = target.astype(np.int64, copy=False)
            classes = out.shape[ax]
            ignore = term.args.get("ignore_index", -100)
            if isinstance(classes, int) and target.size:
                bad = (target != ignore) & ((target < 0) | (target >= classes))
                if bad.any():
                    v = target[bad].flat[0]
                    raise DlcError(
                        f"{call.name}(): the target holds class {v}, but the output "
                        f"{term.args.get('output') or names[0]} has {classes} classes",
                        call.span,
                    )
        elif target.dtype.kind in "fiub":
            want, kind = per, "values"
            if term.name in _CLASS_TERMS and term.name not in ("cross_entropy", "nll"):
                kind = "class probabilities"
            if target.ndim == 1 and len(per) == 1 and per[0] == 1:
                target = target[:, None]  # (N,) for an (N, 1) output
        else:
            raise DlcError(
                f"{call.name}(): the target's dtype {target.dtype} is not numeric", call.span
            )
        got = target.shape[1:]
        if len(got) != len(want) or any(isinstance(w, int) and w != g for w, g in zip(want, got)):
            shown = "[N" + "".join(f", {d}" for d in want) + "]"
            raise DlcError(
                f"{call.name}(): {term.name} needs {kind} of shape {shown} for the output "
                f"{out}, the target is {list(target.shape)} {target.dtype}",
                call.span,
            )
    if target.dtype.kind == "f":
        target = target.astype(np.float32, copy=False)
    return target
