"""``fit`` and ``evaluate``: the Python face of ``dlc train`` and ``dlc eval`` (the CLI
calls these, so both take one code path)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..compiler.errors import DlcError
from ..compiler.recipe.recipe import FnCall
from ..extras import require
from . import checkpoint
from .setup import prepare

require("torch", "training (dlc train, dlc.training)")
require("safetensors", "training checkpoints")


def _path(spec) -> Path:
    """A .dl path, or the file a compiled Network came from."""
    program = getattr(spec, "program", None)
    return Path(program.root if program is not None else spec)


def new_run_dir(recipe: str, root: Path = Path("runs")) -> Path:
    """``runs/RECIPE``, or ``runs/RECIPE-2``, ... : never a previous run's folder."""
    candidate, n = root / recipe, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{recipe}-{n}"
    return candidate


def changed_keys(run_dir: Path, new: dict) -> list[str]:
    """The recipe keys whose values differ from the run's recipe.json, as ``key: a -> b``."""
    try:
        old = json.loads((run_dir / "recipe.json").read_text(encoding="utf-8"))["recipe"]
    except (OSError, ValueError, KeyError):
        return []
    return [
        f"{k}: {json.dumps(old.get(k))} -> {json.dumps(v)}"
        for k, v in new.items()
        if old.get(k) != v
    ]


def fit(
    spec: Any,
    recipe: str | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    device: str = "auto",
    console: Any = None,
    on_epoch: Any = None,
    **overrides: Any,
):
    """Train ``spec``'s recipe (a .dl path or a compiled Network's file); ``overrides``
    set the recipe's parameters as ``--set`` does. Returns a ``FitResult`` (history,
    weights, run_dir). ``resume``: a run folder to continue from its latest checkpoint."""
    from .loop import run

    plan = prepare(_path(spec), recipe, overrides)
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / checkpoint.FOLDER).is_dir():
            raise DlcError(f"--resume {run_dir}: not a run folder with checkpoints")
        changes = changed_keys(run_dir, plan.recipe.to_json())
        if changes and console is not None:
            console.print("resuming with changed recipe keys:\n  " + "\n  ".join(changes))
    else:
        run_dir = Path(out) if out is not None else new_run_dir(plan.recipe.name)
        # Under torchrun only rank 0 writes; the others may find its files already there.
        first = os.environ.get("RANK", "0") == "0"
        if first and ((run_dir / checkpoint.FOLDER).exists() or (run_dir / "recipe.json").exists()):
            raise DlcError(
                f"{run_dir} holds a previous run: continue it with --resume {run_dir}, "
                "or choose another --out"
            )
        if run_dir.exists() and not run_dir.is_dir():
            raise DlcError(f"--out {run_dir}: it is a file, not a folder")
    return run(
        plan, run_dir, resume=resume is not None, device=device, console=console,
        overrides=overrides, on_epoch=on_epoch,
    )  # fmt: skip


def evaluate(
    spec: Any,
    recipe: str | None = None,
    *,
    weights: str | Path,
    data: FnCall | None = None,
    device: str = "auto",
    **overrides: Any,
) -> dict[str, float]:
    """The recipe's loss and metrics on its test split (or on ``data``), with ``weights``
    (a safetensors file): ``{"loss": ..., "accuracy": ..., "examples": n}``."""
    import torch

    from ..runtime.weights import check_weights
    from .loop import Ranks, Trainer

    plan = prepare(_path(spec), recipe, overrides, test_source=data)
    if plan.test is None:
        raise DlcError(
            f"recipe {plan.recipe.name} has no test split: set `test = 0.1` (or a source) in "
            "the recipe, or give --data",
            plan.recipe.span,
        )
    arrays = check_weights(plan.network.graph, weights)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))  # fmt: skip
    plan.val = None
    t = Trainer(plan, Path("."), dev, Ranks(), None)
    t.module.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
    values = t.evaluate(t._tensors(plan.test))
    return {**dict(zip(t.names, values)), "examples": len(plan.test)}
