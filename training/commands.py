"""``dlc train``, ``dlc eval``, ``dlc plot``, ``dlc search`` and ``dlc summary --recipe``
(the parsers are in compiler/cli.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..compiler.cli import parse_overrides
from ..compiler.errors import DlcError
from ..compiler.recipe.recipe import FnCall


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def cmd_train(args, overrides: dict) -> int:
    from . import api
    from .loop import Interrupted

    if args.nproc and args.nproc > 1:
        return _launch(args)
    console = _console() if int(os.environ.get("RANK", "0")) == 0 else None
    try:
        api.fit(
            args.file, args.recipe, out=args.out, resume=args.resume, device=args.device,
            console=console, **overrides,
        )  # fmt: skip
    except Interrupted as stop:
        if console is not None:
            console.print(
                f"interrupted: checkpoint {stop.saved}; continue with "
                f"dlc train {args.file} --resume {stop.run_dir}"
            )
        return 130
    return 0


def _launch(args) -> int:
    """``--nproc N``: check the recipe and its data here, then run this command in N
    processes with torch.distributed.run (torchrun's library) on this machine."""
    from . import api
    from .setup import prepare

    plan = prepare(args.file, args.recipe, parse_overrides(args.set))
    argv = ["train", args.file, "--device", args.device]
    argv += ["--recipe", plan.recipe.name] + [f"--set={s}" for s in args.set]
    if args.resume is not None:
        argv += ["--resume", args.resume]
    else:  # one folder for every process, decided here
        run_dir = Path(args.out) if args.out else api.new_run_dir(plan.recipe.name)
        if (run_dir / "recipe.json").exists():
            raise DlcError(f"{run_dir} holds a previous run: continue it with --resume {run_dir}")
        argv += ["--out", str(run_dir)]
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={args.nproc}", "-m", "dlc", *argv,
    ]  # fmt: skip
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.nproc)))
    proc = subprocess.Popen(cmd, env=env)
    interrupted = False
    while True:
        try:
            code = proc.wait()
            return 130 if interrupted and code else code
        except KeyboardInterrupt:  # the processes got Ctrl-C too: let them checkpoint
            interrupted = True


def cmd_eval(args, overrides: dict, data) -> int:
    from . import api

    result = api.evaluate(
        args.file, args.recipe, weights=args.weights, data=data, device=args.device, **overrides
    )
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        from rich.table import Table

        table = Table("metric", "value")
        for k, v in result.items():
            table.add_row(k, f"{v:,}" if isinstance(v, int) else f"{v:.6g}")
        _console().print(table)
    return 0


def cmd_plot(args) -> int:
    from .plot import plot

    out = args.output or str(Path(args.run_dir) / "curves.svg")
    print(plot(args.run_dir, out))
    return 0


def recipe_summary(args, overrides: dict) -> int:
    """``dlc summary --recipe R``: the network's table, then the resolved recipe."""
    from .setup import prepare

    plan = prepare(args.file, args.recipe, overrides)
    r, net = plan.recipe, plan.network
    if args.format == "json":
        counts = {"params": net.params, "macs_per_example": str(net.macs)}
        splits = {k: len(v) if v is not None else 0 for k, v in _splits(plan)}
        doc = {"recipe": r.to_json(), "network": counts, "examples": splits,
               "steps_per_epoch": plan.steps_per_epoch}  # fmt: skip
        print(json.dumps(doc, indent=2))
        return 0
    print(net.summary(depth=args.depth), end="")
    from rich.table import Table

    def show(v) -> str:
        if isinstance(v, FnCall):
            inner = ", ".join(f"{k}={_value(x)}" for k, x in v.args.items() if x is not None)
            return f"{v.name}({inner})"
        return _value(v)

    table = Table("recipe " + r.name, "", show_header=True)
    table.add_row("model", f"{net.name}({', '.join(f'{k}={v}' for k, v in r.model.args.items())})")
    table.add_row("data", show(r.data))
    for key, ds in _splits(plan):
        table.add_row(f"{key} examples", f"{len(ds):,}" if ds is not None else "-")
    table.add_row(
        "loss", " + ".join(f"{w:g} * {show(t)}" if w != 1 else show(t) for w, t in r.loss)
    )
    for key in ("metrics", "augment"):
        table.add_row(key, ", ".join(show(m) for m in getattr(r, key)) or "-")
    for key in ("optimizer", "schedule", "batch", "epochs", "accumulate", "clip", "precision",
                "seed", "deterministic", "early_stop", "checkpoint"):  # fmt: skip
        table.add_row(key, show(getattr(r, key)))
    table.add_row("steps per epoch", f"{plan.steps_per_epoch:,}")
    table.add_row("parameters", f"{net.params:,}")
    macs = net.macs * r.batch
    table.add_row(
        "MACs per step",
        (f"{macs:,}" if isinstance(macs, int) else str(macs))
        + " forward (about 3× with the backward pass)",
    )
    _console().print(table)
    return 0


def _splits(plan):
    return (("train", plan.train), ("val", plan.val), ("test", plan.test))


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if v is None:
        return "none"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_value(x)}" for k, x in v.items())
    return str(v)


def cmd_search(args) -> int:
    from .loop import Interrupted
    from .tune import best_json, search, trials_json

    quiet = args.format == "json" or os.environ.get("DLC_SEARCH_WORKER")
    console = None if quiet else _console()
    try:
        study = search(
            args.file, args.search, trials=args.trials, storage=args.storage, study=args.study,
            jobs=max(1, args.jobs), out=args.out, device=args.device, console=console,
        )  # fmt: skip
    except (Interrupted, KeyboardInterrupt):
        if console is not None:
            console.print("interrupted: run the same command again to resume the search")
        return 130
    if args.format == "json" and not os.environ.get("DLC_SEARCH_WORKER"):
        print(json.dumps({"trials": trials_json(study), "best": best_json(study)}, indent=2))
    return 0
