"""Losses and metrics of a recipe on torch tensors, as sums and counts.

Every term gives ``(sum, count)`` over a batch rather than a mean, so that batches, epochs
and ranks combine exactly: a mean over a global batch split across processes is the sum of
the ranks' sums over the global count, and an epoch's metric is its batches' sums over
their counts. With one process the loss is ``torch.nn.functional``'s mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..compiler.recipe.elaborate import class_axis
from ..compiler.recipe.recipe import FnCall

# (sum, count): a float32 scalar tensor, and an int (known from the shapes) or, where
# ignored class ids must be left out, an int64 scalar tensor.
Sums = tuple[torch.Tensor, "int | torch.Tensor"]


def pick(outputs: tuple[torch.Tensor, ...], names: list[str], call: FnCall) -> torch.Tensor:
    """The network output a loss or metric reads (``output = "aux"``, else the first)."""
    name = call.args.get("output")
    return outputs[names.index(name)] if name else outputs[0]


def _classes_first(out: torch.Tensor, axis: int | None) -> torch.Tensor:
    return out.movedim(class_axis(out.dim(), axis), 1).float()


def loss_sums(call: FnCall, out: torch.Tensor, target: torch.Tensor, ignoring: bool = True) -> Sums:
    """A loss term over a batch. ``ignoring``: whether the target may hold ignored class
    ids (a count that reads the target); else every element counts."""
    a = call.args
    if call.name in ("cross_entropy", "nll"):
        logits = _classes_first(out, a["axis"])
        if target.is_floating_point():  # class probabilities
            if call.name == "nll":
                per = -(logits * target.movedim(class_axis(out.dim(), a["axis"]), 1)).sum(1)
            else:
                per = F.cross_entropy(
                    logits,
                    target.movedim(class_axis(out.dim(), a["axis"]), 1).float(),
                    reduction="none",
                    label_smoothing=a["label_smoothing"],
                )
            return per.sum(), per.numel()
        if call.name == "nll":
            per = F.nll_loss(logits, target, reduction="none", ignore_index=a["ignore_index"])
        else:
            per = F.cross_entropy(
                logits,
                target,
                reduction="none",
                ignore_index=a["ignore_index"],
                label_smoothing=a["label_smoothing"],
            )
        return per.sum(), (target != a["ignore_index"]).sum() if ignoring else target.numel()
    out, target = out.float(), target.float()
    if call.name == "mse":
        total = F.mse_loss(out, target, reduction="sum")
    elif call.name == "l1":
        total = F.l1_loss(out, target, reduction="sum")
    elif call.name == "smooth_l1":
        total = F.smooth_l1_loss(out, target, reduction="sum", beta=a["beta"])
    elif call.name == "bce_with_logits":
        total = F.binary_cross_entropy_with_logits(out, target, reduction="sum")
    else:
        raise ValueError(f"unknown loss {call.name}")
    return total, out.numel()


def metric_sums(
    call: FnCall, out: torch.Tensor, target: torch.Tensor, ignoring: bool = True
) -> Sums:
    a = call.args
    if call.name in ("accuracy", "top_k"):
        scores = _classes_first(out, a.get("axis"))
        if scores.shape[1] == 1:  # one logit: binary, positive above 0
            hit = (scores[:, 0] > 0) == (target.reshape(scores[:, 0].shape) > 0.5)
            return hit.sum().float(), hit.numel()
        if target.is_floating_point():
            target = target.movedim(class_axis(out.dim(), a.get("axis")), 1).argmax(1)
        if call.name == "accuracy":
            hit = scores.argmax(1) == target
        else:
            hit = (scores.topk(a["k"], dim=1).indices == target.unsqueeze(1)).any(1)
        if not ignoring:
            return hit.sum().float(), hit.numel()
        valid = target >= 0  # ignored (negative) class ids, as padding, don't count
        return (hit & valid).sum().float(), valid.sum()
    diff = out.float() - target.float()
    total = diff.abs().sum() if call.name == "mae" else diff.square().sum()
    return total, diff.numel()
