"""Learning-rate schedules as functions of the optimiser step (LANGUAGE §11).

A schedule is computed, not stepped: ``lr(step)`` depends only on the step, the steps per
epoch and, for ``plateau``, a few numbers of state — so a checkpoint stores no scheduler
object, and resuming gives exactly the rates an unbroken run would. Epoch schedules
(``step``, ``multistep``, ``exponential``, ``plateau``) change at epoch boundaries as
``torch.optim.lr_scheduler`` stepped once per epoch does; ``cosine`` and ``onecycle`` change
every step (as timm's and torch's ``OneCycleLR`` do); a warm-up rises linearly per step.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

from ..compiler.recipe.recipe import FnCall, lower_is_better


class Schedule:
    def __init__(self, call: FnCall, base_lr: float, epochs: int, steps_per_epoch: int):
        self.call, self.base = call, base_lr
        self.per_epoch = steps_per_epoch
        self.total = epochs * steps_per_epoch
        self.warmup = call.args.get("warmup", 0) * steps_per_epoch
        # plateau's state: the best value seen, epochs without improvement, reductions
        self.state: dict[str, Any] = {"best": None, "bad": 0, "scale": 1.0}

    def lr(self, step: int) -> float:
        """The learning rate of optimiser step ``step`` (0-based, counted over the run)."""
        a, name = self.call.args, self.call.name
        if name == "onecycle":
            return _one_cycle(step, self.total, a)
        if step < self.warmup:
            return self.base * (step + 1) / self.warmup
        epoch = step // self.per_epoch
        if name == "constant":
            return self.base
        if name == "step":
            return self.base * a["gamma"] ** (epoch // a["every"])
        if name == "multistep":
            return self.base * a["gamma"] ** bisect_right(a["milestones"], epoch)
        if name == "exponential":
            return self.base * a["gamma"] ** epoch
        if name == "cosine":
            t = (step - self.warmup) / max(1, self.total - self.warmup)
            return a["min_lr"] + (self.base - a["min_lr"]) * (1 + math.cos(math.pi * t)) / 2
        if name == "plateau":
            return max(a["min_lr"], self.base * self.state["scale"])
        raise ValueError(f"unknown schedule {name}")

    def end_epoch(self, metrics: dict[str, float]) -> None:
        """``plateau``: reduce after ``patience`` epochs without improvement."""
        if self.call.name != "plateau":
            return
        a, s = self.call.args, self.state
        value = metrics[a["monitor"]]
        lower = lower_is_better(a["monitor"], a["mode"])
        best = s["best"]
        # torch's ReduceLROnPlateau default: a relative threshold
        if best is None or (
            value < best * (1 - a["threshold"]) if lower else value > best * (1 + a["threshold"])
        ):
            s["best"], s["bad"] = value, 0
            return
        s["bad"] += 1
        if s["bad"] > a["patience"]:
            s["scale"] *= a["factor"]
            s["bad"] = 0


def _one_cycle(step: int, total: int, a: dict) -> float:
    """torch.optim.lr_scheduler.OneCycleLR (cosine, two phases), without momentum cycling."""
    top = a["max_lr"]
    start = top / a["div_factor"]
    end = start / a["final_div_factor"]
    peak = float(a["pct_start"] * total) - 1
    if step <= peak:
        lo, hi, t = start, top, step / max(peak, 1e-12)
    else:
        lo, hi, t = top, end, (step - peak) / max(total - 1 - peak, 1e-12)
    return hi + (lo - hi) * (1 + math.cos(math.pi * min(t, 1.0))) / 2
