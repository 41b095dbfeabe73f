"""What a run writes and shows besides its checkpoints: recipe.json, metrics.csv,
TensorBoard events, curves.svg, and the progress bar and epoch lines on the console."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..runtime.files import write_text
from .setup import Plan


def curves(run_dir: Path) -> Path | None:
    """curves.svg when matplotlib is installed (``dlc plot`` draws it again on demand)."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    from .plot import plot

    return plot(run_dir, run_dir / "curves.svg")


def tensorboard_writer(run_dir: Path):
    if importlib.util.find_spec("tensorboard") is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(run_dir / "tensorboard"))


def write_metrics(run_dir: Path, history: list[dict[str, float]]) -> None:
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    columns.sort(key=lambda c: c in ("lr", "time"))  # stable: epoch, train.*, val.*, lr, time
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in history:
        w.writerow(["" if row.get(c) is None else repr(row[c]) for c in columns])
    write_text(run_dir / "metrics.csv", buf.getvalue())


def write_recipe_json(plan: Plan, run_dir: Path, dev, processes: int, overrides) -> None:
    net = plan.network
    doc = {
        "recipe": plan.recipe.to_json(),
        "overrides": {k: v for k, v in (overrides or {}).items()},
        "spec": {"file": str(plan.recipe.path), "sha256": plan.spec_hash},
        "network": {"name": net.name, "params": net.params},
        "data": {
            k: len(v) if v is not None else 0
            for k, v in (("train", plan.train), ("val", plan.val), ("test", plan.test))
        },
        "device": str(dev),
        "processes": processes,
        "versions": {
            "dlc": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
    write_text(run_dir / "recipe.json", json.dumps(doc, indent=2, default=str) + "\n")


class Progress:
    """A rich progress bar per epoch on a terminal, then a line of metrics per epoch;
    only the lines when the output is not a terminal; nothing on other ranks."""

    def __init__(self, console, epochs: int):
        self.console, self.epochs = console, epochs
        self.bar = None
        self.last = 0.0

    def __enter__(self):
        if self.console is not None and self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("epoch {task.fields[epoch]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} ex/s  loss {task.fields[loss]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def start(self, epoch: int, batches: int) -> None:
        self.seen, self.t0 = 0, time.perf_counter()
        self.last = 0.0  # the rate and loss show from an epoch's first step
        if self.bar is not None:
            for task in list(self.bar.task_ids):
                self.bar.remove_task(task)
            self.task = self.bar.add_task(
                "", total=batches, epoch=f"{epoch + 1}/{self.epochs}", rate="-", loss="-"
            )

    def update(self, done: int, total: int, examples: int, tally, weights) -> None:
        self.seen += examples
        if self.bar is None:
            return
        now = time.perf_counter()
        if now - self.last < 0.25 and done < total:
            self.bar.update(self.task, completed=done)
            return
        self.last = now
        loss = tally.values(tally.rows()[: len(weights)], weights)[0]  # a sync, 4 times a second
        rate = self.seen / max(now - self.t0, 1e-9)
        self.bar.update(self.task, completed=done, rate=f"{rate:,.0f}", loss=f"{loss:.4f}")

    def epoch_line(self, row: dict[str, float]) -> None:
        if self.console is None:
            return
        parts = [f"epoch {row['epoch']}/{self.epochs}"]
        parts += [f"{k} {v:.4f}" for k, v in row.items() if k not in ("epoch", "lr", "time")]
        parts += [f"lr {row['lr']:.3g}", f"{row['time']:.1f}s"]
        self.console.print("  ".join(parts), highlight=False, soft_wrap=True)
