"""Hyper-parameter search (LANGUAGE §12) on Optuna: each trial is a ``fit`` of the recipe
with the sampled values set as ``--set`` would, in its own run folder; its epoch metrics go
to Optuna's pruner; the study lives in a storage (SQLite in the output folder by default),
so a search resumes, and workers on one storage search together.

Two things Optuna alone cannot do: a budget (``max_params``, ``max_macs``) prunes a trial
from the compiler's counts before any model is built, and every trial's seed derives from
the search's seed and the trial's number, so a trial re-runs alone from its ``--set`` line.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..compiler.errors import DlcError
from ..compiler.frontend.program import load_program
from ..compiler.recipe.elaborate import load_recipe
from ..compiler.recipe.search import Search, Space, elaborate_search
from ..extras import require
from ..runtime.files import atomic_write, write_text

optuna = require("optuna", "dlc search")
TrialState = optuna.trial.TrialState
_TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
_WORKER = "DLC_SEARCH_WORKER"  # set for the processes --jobs starts


def trial_seed(search_seed: int, number: int) -> int:
    """The recipe seed of trial ``number``: from the search's seed and the number alone."""
    return int(np.random.SeedSequence([search_seed, number]).generate_state(1)[0] % 2**31)


def set_line(values: dict[str, Any]) -> str:
    """``--set lr=0.01 --set width=16``: values as .dl expressions."""
    from ..compiler.elaborate.values import describe

    def text(v: Any) -> str:
        return repr(v) if isinstance(v, float) else describe(v).replace(" ", "")

    return " ".join(f"--set {k}={text(v)}" for k, v in values.items())


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _suggest(trial, name: str, space: Space) -> Any:
    if space.kind == "choice":
        if all(_scalar(v) for v in space.values):
            return trial.suggest_categorical(name, list(space.values))
        return space.values[trial.suggest_categorical(name, list(range(len(space.values))))]
    if space.kind == "int_uniform":
        lo, hi, step = space.values
        return trial.suggest_int(name, lo, hi, step=step)
    lo, hi = space.values
    return trial.suggest_float(name, lo, hi, log=space.kind == "loguniform")


def _grid_space(s: Search) -> dict[str, list]:
    return {
        k: list(sp.values) if all(_scalar(v) for v in sp.values) else list(range(len(sp.values)))
        for k, sp in s.spaces.items()
    }


def _sampler(s: Search, worker: int, existing: int):
    """The search's sampler. Its seed mixes in the worker, the machine and the trials the
    study already holds, so that workers, machines and re-runs draw new points (and a new
    search on one machine draws the same ones every time)."""
    host = zlib.crc32(socket.gethostname().encode())
    seed = int(np.random.SeedSequence([s.seed, worker, host, existing]).generate_state(1)[0])
    if s.sampler == "grid":
        # Optuna's GridSampler gives trial k the k-th point of a seeded shuffle of the grid:
        # trial numbers are unique in a storage, so workers never share a point.
        return optuna.samplers.GridSampler(_grid_space(s), seed=s.seed)
    if s.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(s: Search, epochs: int):
    if s.pruner == "median":
        # from the second epoch on (steps are epochs, from 1): a first epoch says little
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)
    if s.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs))
    return optuna.pruners.NopPruner()


HEARTBEAT = 20  # seconds between a running trial's heartbeats (database storages)


def _storage(url: str):
    """A database storage with heartbeats, so that a trial whose process died is failed
    (and its slot freed) after a grace period; SQLite files wait for each other's locks."""
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite:") else None
    return optuna.storages.RDBStorage(
        url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT, grace_period=6 * HEARTBEAT
    )


class _Heartbeat:
    """Records a trial's heartbeat every HEARTBEAT seconds while it trains."""

    def __init__(self, st, trial):
        self.stop = threading.Event()
        storage, trial_id = st._storage, trial._trial_id

        def beat() -> None:
            while True:
                storage.record_heartbeat(trial_id)
                if self.stop.wait(HEARTBEAT):
                    return

        self.thread = threading.Thread(target=beat, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def search(
    path: str | Path,
    search: str | None = None,
    *,
    trials: int | None = None,
    storage: str | None = None,
    study: str | None = None,
    jobs: int = 1,
    out: str | Path | None = None,
    device: str = "auto",
    console: Any = None,
):
    """Run (or resume) the search section ``search`` of ``path``; returns the Optuna
    study. ``trials``: the study's total (finished and running) trials."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        # heartbeats outside Study.optimize work (we record them), but Optuna warns of it
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        return _search(path, search, trials, storage, study, jobs, out, device, console)


def _search(path, search, trials, storage, study, jobs, out, device, console):
    try:
        program = load_program(path)
    except OSError as exc:
        raise DlcError(f"cannot read {path}: {exc.strerror or exc}") from None
    s = elaborate_search(program, search)
    if trials is not None:
        s.trials = trials
    out = Path(out) if out is not None else Path("searches") / s.name
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DlcError(f"cannot write {out}: {exc.strerror or exc}") from None
    url = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    recipe, _ = load_recipe(program, s.recipe, s.fixed)
    worker = int(os.environ.get(_WORKER, "0"))
    try:
        st = optuna.create_study(
            study_name=study or s.name, storage=_storage(url), direction=s.direction,
            pruner=_pruner(s, recipe.epochs), load_if_exists=True,
        )  # fmt: skip
    except Exception as exc:  # a bad URL, an unreachable database: Optuna's own message
        raise DlcError(f"--storage {url}: {type(exc).__name__}: {exc}") from None
    st.sampler = _sampler(s, worker, len(st.get_trials(deepcopy=False)))
    if not worker:
        st.set_user_attr("search", s.to_json())
    if jobs > 1:  # share the cores out, as --nproc does
        torch_threads = max(1, (os.cpu_count() or 1) // jobs)
        os.environ.setdefault("OMP_NUM_THREADS", str(torch_threads))
        import torch

        torch.set_num_threads(torch_threads)
    children = [] if worker else _start_workers(jobs, path, s, url, st.study_name, out, device)
    folder = out / "trials" / ("" if st.study_name == s.name else st.study_name)
    try:
        _work(st, s, program, Path(path), folder, device, console)
    finally:
        for child in children:
            child.wait()
    if not worker:
        _report(st, s, out, console)
    return st


def _start_workers(jobs, path, s: Search, url, study, out, device) -> list[subprocess.Popen]:
    cmd = [
        sys.executable, "-m", "dlc", "search", str(path), "--search", s.name,
        "--storage", url, "--study", study, "--out", str(out), "--trials", str(s.trials),
        "--device", device,
    ]  # fmt: skip
    return [
        subprocess.Popen(cmd, env=dict(os.environ, **{_WORKER: str(k)}), stdout=subprocess.DEVNULL)
        for k in range(1, jobs)
    ]


MAX_FAILURES = 3  # trials failing in a row before a search gives up


def _work(st, s: Search, program, path: Path, folder: Path, device: str, console) -> None:
    """Run trials until the study holds ``s.trials`` finished or running ones (trials of
    dead processes are failed first, freeing their slots)."""
    from .api import fit
    from .loop import Interrupted

    failures: list[str] = []
    while True:
        optuna.storages.fail_stale_trials(st)
        if sum(t.state in _TAKEN for t in st.get_trials(deepcopy=False)) >= s.trials:
            break
        if len(failures) >= MAX_FAILURES:
            raise DlcError(
                f"search {s.name}: {len(failures)} trials in a row failed; the last: {failures[-1]}"
            )
        trial = st.ask()
        values = {name: _suggest(trial, name, space) for name, space in s.spaces.items()}
        if s.sampler == "grid" and _visited(st, trial, values):
            _tell(st, trial, state=TrialState.FAIL)  # a point another worker took: not rerun
            continue
        overrides = {**s.fixed, **values, "seed": trial_seed(s.seed, trial.number)}
        trial.set_user_attr("set", set_line(overrides))
        start = time.perf_counter()
        try:
            reason = _over_budget(program, s, overrides)
        except DlcError as err:  # the recipe refuses these values
            reason, failures = None, [*failures, err.message]
            trial.set_user_attr("error", err.message)
            _tell(st, trial, state=TrialState.FAIL)
            _line(console, trial.number, values, None, f"failed: {err.message}", 0.0)
            continue
        if reason:
            trial.set_user_attr("pruned_by", reason)
            _tell(st, trial, state=TrialState.PRUNED)
            _line(console, trial.number, values, None, f"pruned before training: {reason}", 0.0)
            continue

        def report(row: dict[str, float], trial=trial) -> bool:
            value = row.get(s.metric)
            if value is None or not math.isfinite(value):
                return False
            trial.report(value, step=int(row["epoch"]))
            return trial.should_prune()

        try:
            with _Heartbeat(st, trial):
                res = fit(
                    path, s.recipe, out=folder / f"{trial.number:04d}", device=device,
                    on_epoch=report, **overrides,
                )  # fmt: skip
        except (Interrupted, KeyboardInterrupt):
            _tell(st, trial, state=TrialState.FAIL)  # a re-run searches this point again
            raise
        except DlcError as err:
            trial.set_user_attr("error", err.message)
            _tell(st, trial, state=TrialState.FAIL)
            _line(console, trial.number, values, None, f"failed: {err.message}", 0.0)
            failures.append(err.message)
            continue
        failures.clear()
        scores = [h[s.metric] for h in res.history if s.metric in h]
        best = (max if s.direction == "maximize" else min)(scores)
        took = time.perf_counter() - start
        if res.pruned:
            _tell(st, trial, state=TrialState.PRUNED)
            _line(console, trial.number, values, best, "pruned", took)
        else:
            _tell(st, trial, best)
            _line(console, trial.number, values, best, "complete", took)


def _tell(st, trial, value=None, state=None) -> None:
    """``study.tell``; the state is stored even when GridSampler, on the grid's last point,
    calls ``study.stop()``, which raises outside ``study.optimize`` (Optuna issue 4121)."""
    try:
        st.tell(trial, value, state=state)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


def _visited(st, trial, values: dict) -> bool:
    """Whether another trial already took this grid point (a race at the grid's end)."""
    return any(
        t.number != trial.number and t.state in _TAKEN and t.params == trial.params
        for t in st.get_trials(deepcopy=False)
    )


def _over_budget(program, s: Search, overrides: dict) -> str | None:
    """The budget a trial's network breaks, from the compiler's counts (no model built)."""
    if s.max_params is None and s.max_macs is None:
        return None
    _, net = load_recipe(program, s.recipe, overrides)
    if s.max_params is not None and net.params > s.max_params:
        return f"{net.params:,} parameters > max_params {s.max_params:,}"
    macs = net.macs
    if s.max_macs is not None and isinstance(macs, int) and macs > s.max_macs:
        return f"{macs:,} MACs > max_macs {s.max_macs:,}"
    return None


def _line(console, number: int, values: dict, value, state: str, took: float) -> None:
    if console is None:
        return
    shown = "  ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )
    score = "-" if value is None else f"{value:.4f}"
    console.print(f"trial {number:>3}  {shown}  objective {score}  {state}  {took:.1f}s")


def trials_json(st) -> list[dict]:
    rows = []
    for t in st.get_trials(deepcopy=False):
        took = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete
            else None
        )
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "params": t.params,
                "value": t.value,
                "seconds": took,
                "set": t.user_attrs.get("set"),
                **{k: t.user_attrs[k] for k in ("pruned_by", "error") if k in t.user_attrs},
            }
        )
    return rows


def best_json(st) -> dict | None:
    """The best complete trial, as best.json holds it (the search from the study's
    ``search`` attribute, set by the first process)."""
    s = st.user_attrs["search"]
    done = [t for t in st.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not done:
        return None
    best = st.best_trial
    folder = "" if st.study_name == s["name"] else st.study_name
    return {
        "trial": best.number,
        "objective": {**s["objective"], "value": best.value},
        "params": best.params,
        "set": best.user_attrs.get("set"),
        "run": str(Path("trials", folder, f"{best.number:04d}")),
    }


def _report(st, s: Search, out: Path, console) -> None:
    best = best_json(st)
    if best is not None:
        write_text(out / "best.json", json.dumps(best, indent=2) + "\n")
    _plots(st, out)
    if console is None:
        return
    from rich.table import Table

    table = Table("trial", *s.spaces, s.metric, "state", "seconds")
    for row in trials_json(st):
        params = [_show(row["params"].get(k, "-")) for k in s.spaces]
        value = "-" if row["value"] is None else f"{row['value']:.4f}"
        secs = "-" if row["seconds"] is None else f"{row['seconds']:.1f}"
        table.add_row(str(row["number"]), *params, value, row["state"], secs)
    console.print(table)
    if best is not None:
        console.print(f"best: trial {best['trial']}, {s.metric} {best['objective']['value']:.4f}")
        console.print(f"  {best['set']}")
        console.print(f"  written to {out / 'best.json'}")


def _show(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _plots(st, out: Path) -> None:
    """history.svg and importances.svg, with Optuna's matplotlib plots (if installed)."""
    import importlib.util

    done = [t for t in st.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if importlib.util.find_spec("matplotlib") is None or not done:
        return
    from optuna.visualization import matplotlib as vis

    plots = [("history.svg", vis.plot_optimization_history)]
    if len(done) >= 2 and len(done[0].params) >= 1:
        plots.append(("importances.svg", vis.plot_param_importances))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        for name, draw in plots:
            try:
                ax = draw(st)
            except (ValueError, RuntimeError):  # too few distinct values to rank, say
                continue
            fig = ax.figure
            atomic_write(out / name, lambda tmp, fig=fig: fig.savefig(tmp, format="svg"))
            import matplotlib.pyplot as plt

            plt.close(fig)
