"""What a ``train`` section may say (LANGUAGE §11), as tables: each recipe function (a data
source, loss, metric, optimiser, schedule, augmentation, ``early_stop``, ``checkpoint``)
with its parameters, their checks and defaults, and each recipe key with its kind of value.

The tables are the one description of the recipe language: the elaborator checks calls
against them, ``dlc summary --recipe`` and recipe.json show the resolved arguments, and the
training runtime reads the arguments by these names. Defaults are ``torch.optim``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..elaborate.values import describe


class Bad(ValueError):
    """A value that fails a check; the message says what was expected."""


REQUIRED = object()  # a parameter without a default


@dataclass(frozen=True)
class P:
    """One parameter of a recipe function: its name, check and default."""

    name: str
    check: Any  # value -> normalised value, or raises Bad
    default: Any = REQUIRED


# ---- checks --------------------------------------------------------------------------------


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def number(v: Any) -> float:
    if not _is_number(v):
        raise Bad("a number")
    return float(v)


def nonneg(v: Any) -> float:
    if not _is_number(v) or v < 0:
        raise Bad("a number ≥ 0")
    return float(v)


def positive(v: Any) -> float:
    if not _is_number(v) or v <= 0:
        raise Bad("a number > 0")
    return float(v)


def probability(v: Any) -> float:
    if not _is_number(v) or not 0 <= v <= 1:
        raise Bad("a probability in [0, 1]")
    return float(v)


def unit(v: Any) -> float:
    """A factor in [0, 1) (momentum, smoothing, a decay)."""
    if not _is_number(v) or not 0 <= v < 1:
        raise Bad("a number in [0, 1)")
    return float(v)


def integer(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise Bad("an integer")
    return v


def count(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise Bad("an integer ≥ 1")
    return v


def natural(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise Bad("an integer ≥ 0")
    return v


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise Bad("true or false")
    return v


def string(v: Any) -> str:
    if not isinstance(v, str):
        raise Bad("a string")
    return v


def optional(check):
    """``check``, or ``none``."""

    def run(v: Any):
        return None if v is None else check(v)

    run.__name__ = check.__name__
    return run


def one_of(*choices: str):
    def run(v: Any) -> str:
        if v not in choices:
            raise Bad("one of " + ", ".join(f'"{c}"' for c in choices))
        return v

    return run


def pair(check):
    """Two values (a tuple or list)."""

    def run(v: Any) -> tuple:
        if not isinstance(v, (tuple, list)) or len(v) != 2:
            raise Bad("two values, (a, b)")
        return tuple(check(x) for x in v)

    return run


def size(v: Any) -> tuple[int, int]:
    """An image size: ``n`` (square) or ``(h, w)``."""
    if isinstance(v, int) and not isinstance(v, bool):
        v = (v, v)
    if not isinstance(v, (tuple, list)) or len(v) != 2:
        raise Bad("a size: n or (h, w)")
    return tuple(count(x) for x in v)


def numbers(v: Any) -> tuple[float, ...]:
    """A number, or one per channel."""
    if _is_number(v):
        return (float(v),)
    if not isinstance(v, (tuple, list)) or not v or not all(_is_number(x) for x in v):
        raise Bad("a number or a list of numbers")
    return tuple(float(x) for x in v)


def positives(v: Any) -> tuple[float, ...]:
    out = numbers(v)
    if any(x <= 0 for x in out):
        raise Bad("numbers > 0")
    return out


def milestones(v: Any) -> tuple[int, ...]:
    if not isinstance(v, (tuple, list)) or not v:
        raise Bad("a list of epochs, [30, 60]")
    out = tuple(count(x) for x in v)
    if list(out) != sorted(set(out)):
        raise Bad("increasing epochs")
    return out


def mode(v: Any) -> str:
    return one_of("auto", "min", "max")(v)


# ---- recipe functions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Fn:
    """A recipe function: ``kind`` says where it may appear (a source, a loss, ...).
    ``extra`` names the dict that collects keywords not in ``params`` (``npz(path,
    image = "x")`` maps network inputs to arrays), or is None."""

    name: str
    kind: str
    params: tuple[P, ...]
    doc: str
    extra: str | None = None


_OUTPUT = P("output", optional(string), None)  # which network output (several outputs)
_IGNORE = P("ignore_index", integer, -100)
_AXIS = P("axis", optional(integer), None)  # the class axis; None: the usual one

FUNCTIONS: dict[str, dict[str, Fn]] = {}


def _define(kind: str, name: str, doc: str, *params: P, extra: str | None = None) -> None:
    FUNCTIONS.setdefault(kind, {})[name] = Fn(name, kind, params, doc, extra)


# Data sources: paths relative to the .dl file.
_define(
    "source",
    "npz",
    "arrays of a NumPy .npz file: one per network input (by name unless mapped), and the target",
    P("path", string),
    P("target", optional(string), None),
    extra="arrays",
)
_define(
    "source",
    "safetensors",
    "arrays of a safetensors file (memory-mapped), mapped as for npz",
    P("path", string),
    P("target", optional(string), None),
    extra="arrays",
)
_define(
    "source",
    "csv",
    "a CSV file with a header: the target column by name, the other numeric columns as "
    "features of a rank-2 input",
    P("path", string),
    P("target", optional(string), None),
)
_define(
    "source",
    "images",
    "a folder with one subfolder of images per class, decoded with Pillow and resized",
    P("path", string),
    P("size", size),
)

# Losses: torch.nn.functional's meaning; each may pick a network output.
_define(
    "loss",
    "cross_entropy",
    "softmax cross-entropy against class ids (or class probabilities)",
    P("label_smoothing", unit, 0.0),
    _IGNORE,
    _AXIS,
    _OUTPUT,
)
_define("loss", "nll", "negative log-likelihood of log-probabilities", _IGNORE, _AXIS, _OUTPUT)
_define("loss", "mse", "mean squared error", _OUTPUT)
_define("loss", "l1", "mean absolute error", _OUTPUT)
_define(
    "loss", "smooth_l1", "Huber-like loss, quadratic below beta", P("beta", positive, 1.0), _OUTPUT
)
_define("loss", "bce_with_logits", "binary cross-entropy on logits", _OUTPUT)

# Metrics: logged as train.NAME and val.NAME.
_define("metric", "accuracy", "the fraction of examples whose top class is the target", _OUTPUT)
_define(
    "metric",
    "top_k",
    "the fraction whose target is among the k top classes",
    P("k", count),
    _OUTPUT,
)
_define("metric", "mae", "mean absolute error", _OUTPUT)
_define("metric", "mse", "mean squared error", _OUTPUT)

# Optimisers: torch.optim's arguments and defaults.
_WD = P("weight_decay", nonneg, 0.0)
_define(
    "optimizer",
    "sgd",
    "stochastic gradient descent, with momentum and Nesterov's variant",
    P("lr", positive),
    P("momentum", unit, 0.0),
    P("dampening", unit, 0.0),
    P("nesterov", boolean, False),
    _WD,
)
_define(
    "optimizer",
    "adagrad",
    "Adagrad",
    P("lr", positive, 0.01),
    P("lr_decay", nonneg, 0.0),
    _WD,
    P("eps", positive, 1e-10),
)
_define(
    "optimizer",
    "rmsprop",
    "RMSprop",
    P("lr", positive, 0.01),
    P("alpha", unit, 0.99),
    P("eps", positive, 1e-8),
    _WD,
    P("momentum", unit, 0.0),
    P("centered", boolean, False),
)
for _name, _wd, _doc in (
    ("adam", 0.0, "Adam"),
    ("adamw", 0.01, "Adam with decoupled weight decay"),
):
    _define(
        "optimizer",
        _name,
        _doc,
        P("lr", positive, 1e-3),
        P("betas", pair(unit), (0.9, 0.999)),
        P("eps", positive, 1e-8),
        P("weight_decay", nonneg, _wd),
        P("amsgrad", boolean, False),
    )

# Schedules: functions of the epoch; every one takes a linear warm-up (per step).
_WARMUP = P("warmup", natural, 0)
_define("schedule", "constant", "the optimiser's learning rate throughout", _WARMUP)
_define(
    "schedule",
    "step",
    "multiply by gamma every `every` epochs",
    P("every", count),
    P("gamma", positive, 0.1),
    _WARMUP,
)
_define(
    "schedule",
    "multistep",
    "multiply by gamma at each milestone epoch",
    P("milestones", milestones),
    P("gamma", positive, 0.1),
    _WARMUP,
)
_define("schedule", "exponential", "multiply by gamma every epoch", P("gamma", positive), _WARMUP)
_define(
    "schedule",
    "cosine",
    "cosine annealing to min_lr over the epochs (per step)",
    _WARMUP,
    P("min_lr", nonneg, 0.0),
)
_define(
    "schedule",
    "onecycle",
    "one cycle: up to max_lr, then down by cosine (per step), as torch's OneCycleLR",
    P("max_lr", positive),
    P("pct_start", unit, 0.3),
    P("div_factor", positive, 25.0),
    P("final_div_factor", positive, 1e4),
)
_define(
    "schedule",
    "plateau",
    "multiply by factor when the monitored metric stops improving for `patience` epochs",
    P("monitor", string, "val.loss"),
    P("factor", unit, 0.1),
    P("patience", natural, 10),
    P("mode", mode, "auto"),
    P("min_lr", nonneg, 0.0),
    P("threshold", nonneg, 1e-4),
    _WARMUP,
)

# Augmentations: training batches only, random per example. `rank` is the least input rank.
_define(
    "augment",
    "random_crop",
    "a random crop of the given size per example, after zero padding",
    P("size", size),
    P("padding", natural, 0),
)
_define("augment", "hflip", "flip the last axis with probability p", P("p", probability, 0.5))
_define(
    "augment", "vflip", "flip the second-last axis with probability p", P("p", probability, 0.5)
)
_define("augment", "rotate", "rotate by a random angle in ±degrees", P("degrees", nonneg))
_define(
    "augment",
    "color_jitter",
    "random brightness, contrast, saturation and hue, as torchvision's ColorJitter",
    P("brightness", nonneg, 0.0),
    P("contrast", nonneg, 0.0),
    P("saturation", nonneg, 0.0),
    P("hue", nonneg, 0.0),
)
_define(
    "augment",
    "random_erasing",
    "erase a random rectangle with probability p",
    P("p", probability, 0.5),
    P("scale", pair(probability), (0.02, 0.33)),
    P("ratio", pair(positive), (0.3, 3.3)),
    P("value", number, 0.0),
)
_define("augment", "noise", "add Gaussian noise of this standard deviation", P("std", nonneg))
_define("augment", "time_shift", "shift along the last axis by up to ±max steps", P("max", natural))
_define(
    "augment",
    "normalize",
    "(x - mean) / std per channel (axis 1), on every split",
    P("mean", numbers),
    P("std", positives),
)

# Least input rank of each augmentation (with the batch axis), and whether it needs 3 channels.
AUGMENT_RANK = {
    "random_crop": 3,
    "hflip": 2,
    "vflip": 3,
    "rotate": 4,
    "color_jitter": 4,
    "random_erasing": 3,
    "noise": 1,
    "time_shift": 2,
    "normalize": 2,
}

# Statements of a recipe body.
_define(
    "statement",
    "early_stop",
    "stop when the monitored metric has not improved for `patience` epochs",
    P("monitor", string, "val.loss"),
    P("mode", mode, "auto"),
    P("patience", natural, 10),
    P("min_delta", nonneg, 0.0),
    P("restore_best", boolean, True),
)
_define(
    "statement",
    "checkpoint",
    "write a checkpoint every `every` epochs, keeping the last `keep`",
    P("every", count, 1),
    P("keep", count, 2),
)

# ---- recipe keys ------------------------------------------------------------------------------

# key -> (what its value is, default). A kind names a table of FUNCTIONS; "model" is a
# network; "split" a fraction or a source; "losses" a weighted sum of losses; a check
# function a plain value.
KEYS: dict[str, tuple[Any, Any]] = {
    "model": ("model", REQUIRED),
    "data": ("source", REQUIRED),
    "val": ("split", None),
    "test": ("split", None),
    "loss": ("losses", REQUIRED),
    "metrics": ("metrics", ()),
    "optimizer": ("optimizer", "adam"),
    "schedule": ("schedule", "constant"),
    "batch": (count, 32),
    "epochs": (count, 1),
    "accumulate": (count, 1),
    "clip": (optional(positive), None),
    "precision": (one_of("fp32", "bf16", "fp16"), "fp32"),
    "seed": (natural, 0),
    "deterministic": (boolean, False),
    "augment": ("augments", ()),
}

# The metrics where smaller is better (early_stop's and plateau's mode "auto").
LOWER_IS_BETTER = {"loss", "mae", "mse"}


def metric_name(fn: str, args: dict) -> str:
    """A metric's logged name: ``accuracy``, ``top_3``, ``aux.accuracy``."""
    base = f"top_{args['k']}" if fn == "top_k" else fn
    return f"{args['output']}.{base}" if args.get("output") else base


def bad_value(fn: str, param: str, expected: str, value: Any) -> str:
    where = f"{fn}({param}=…)" if fn else param
    return f"{where}: expected {expected}, got {describe(value)}"
