"""The initialisers a spec may name (LANGUAGE §6) and their argument schemas.

Only the schema lives here; sampling is the weights module's job. Positional arguments
bind in the order given, as in PyTorch's ``nn.init`` functions.
"""

from __future__ import annotations

from ..ops.base import Arg, choice, real

_MODE = choice("fan_in", "fan_out")
_NONLINEARITY = choice(
    "linear", "conv1d", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"
)
_FAN = (
    Arg("a", real(), 0.0),
    Arg("mode", _MODE, "fan_in"),
    Arg("nonlinearity", _NONLINEARITY, "leaky_relu"),
)

INITIALIZERS: dict[str, tuple[Arg, ...]] = {
    "zeros": (),
    "ones": (),
    "constant": (Arg("value", real()),),
    "normal": (Arg("mean", real(), 0.0), Arg("std", real(0), 1.0)),
    # a and b are the cut-offs themselves, not in units of std (as nn.init.trunc_normal_)
    "trunc_normal": (
        Arg("mean", real(), 0.0),
        Arg("std", real(0), 1.0),
        Arg("a", real(), -2.0),
        Arg("b", real(), 2.0),
    ),
    "uniform": (Arg("a", real(), 0.0), Arg("b", real(), 1.0)),
    "xavier_uniform": (Arg("gain", real(0), 1.0),),
    "xavier_normal": (Arg("gain", real(0), 1.0),),
    "kaiming_uniform": _FAN,
    "kaiming_normal": _FAN,
    "orthogonal": (Arg("gain", real(0), 1.0),),
}

# Which parameters an `init ROLE = ...` statement reaches (see ir.Param.role).
INIT_ROLES: dict[str, tuple[str, ...]] = {
    "weight": ("weight", "table"),
    "bias": ("bias",),
    "embedding": ("table",),
    "norm_weight": ("scale",),
    "norm_bias": ("shift",),
    "param": ("param",),
}
