"""Weights: deterministic initialisation with NumPy, safetensors files, validation.

``init_weights(net, seed)`` makes every parameter and buffer of the IR, by the spec's
``init`` statements or else PyTorch's default for the layer type, with PyTorch's gain and
fan formulas (``torch.nn.init``). Each tensor draws from its own stream, seeded by
``(seed, crc32(name))``: the same spec and seed give the same bytes on every run and
machine, and adding a layer does not change the others' values.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..compiler.errors import DlcError
from ..compiler.ir.graph import Graph, Init, Param
from .files import atomic_write

if TYPE_CHECKING:
    from ..compiler.network import Network

NP_DTYPES = {
    "float32": np.float32,
    "float16": np.float16,
    "int64": np.int64,
    "int32": np.int32,
    "bool": np.bool_,
}


class WeightsError(DlcError):
    """Weights that do not fit the network: every offending name, with expected and found."""


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """torch.nn.init._calculate_fan_in_and_fan_out."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a tensor of rank >= 2, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _gain(nonlinearity: str, a: float) -> float:
    """torch.nn.init.calculate_gain."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}")


def sample(init: Init, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Draw one tensor from ``init`` (float64; the caller casts)."""
    a = dict(init.args)
    name = init.name
    if name == "zeros":
        return np.zeros(shape)
    if name == "ones":
        return np.ones(shape)
    if name == "constant":
        return np.full(shape, a["value"])
    if name == "normal":
        return rng.normal(a.get("mean", 0.0), a.get("std", 1.0), shape)
    if name == "uniform":
        return rng.uniform(a.get("a", 0.0), a.get("b", 1.0), shape)
    if name == "trunc_normal":
        return _trunc_normal(
            a.get("mean", 0.0), a.get("std", 1.0), a.get("a", -2.0), a.get("b", 2.0), shape, rng
        )
    if name in ("xavier_uniform", "xavier_normal"):
        fan_in, fan_out = _fans(shape)
        std = a.get("gain", 1.0) * math.sqrt(2.0 / (fan_in + fan_out))
        if name == "xavier_normal":
            return rng.normal(0.0, std, shape)
        return rng.uniform(-math.sqrt(3.0) * std, math.sqrt(3.0) * std, shape)
    if name in ("kaiming_uniform", "kaiming_normal"):
        fan_in, fan_out = _fans(shape)
        fan = fan_in if a.get("mode", "fan_in") == "fan_in" else fan_out
        slope = a.get("a", 0.0)
        std = _gain(a.get("nonlinearity", "leaky_relu"), slope) / math.sqrt(fan)
        if name == "kaiming_normal":
            return rng.normal(0.0, std, shape)
        return rng.uniform(-math.sqrt(3.0) * std, math.sqrt(3.0) * std, shape)
    if name == "orthogonal":
        if len(shape) < 2:
            raise ValueError(f"orthogonal needs a tensor of rank >= 2, got shape {shape}")
        rows, cols = shape[0], math.prod(shape[1:])
        flat = rng.normal(0.0, 1.0, (rows, cols))
        if rows < cols:
            flat = flat.T
        q, r = np.linalg.qr(flat)
        q *= np.sign(np.diag(r))  # make the decomposition unique, as torch does
        if rows < cols:
            q = q.T
        return a.get("gain", 1.0) * q.reshape(shape)
    raise ValueError(f"unknown initialiser {name!r}")


def _trunc_normal(mean, std, lo, hi, shape, rng: np.random.Generator) -> np.ndarray:
    """normal(mean, std) conditioned on [lo, hi]: values outside are drawn again (a
    deterministic stream; PyTorch inverts the CDF instead, the same distribution)."""
    if not lo < hi:
        raise ValueError(f"trunc_normal needs a < b, got a={lo}, b={hi}")
    out = rng.normal(mean, std, shape)
    for _ in range(1000):
        bad = (out < lo) | (out > hi)
        if not bad.any():
            return out
        out[bad] = rng.normal(mean, std, int(bad.sum()))
    raise ValueError(f"[{lo}, {hi}] holds almost none of normal({mean}, {std})")


def _stream(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def init_weights(net: Network | Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Every parameter and buffer of ``net``, keyed by its IR name."""
    from ..compiler.ops import OPS

    graph = net.graph if hasattr(net, "graph") else net
    out: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        if not node.params:
            continue
        defaults = OPS[node.op].default_inits(node.attrs, node.params)
        for local, p in node.params.items():
            name = node.param_name(local)
            init = p.init or defaults[local]
            try:
                values = sample(init, p.shape, _stream(seed, name))
            except ValueError as exc:
                raise DlcError(
                    f"cannot initialise {name} {list(p.shape)} with {init}: {exc}", node.span
                ) from None
            out[name] = values.astype(NP_DTYPES.get(p.dtype, np.float32))
    return out


# ---- files ---------------------------------------------------------------------------


def _safetensors():
    try:
        from safetensors import numpy as st
    except ImportError:
        raise DlcError(
            "weights files need the safetensors package: pip install 'dlc[weights]'"
        ) from None
    return st


def save_weights(weights: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Write a safetensors file atomically."""
    st = _safetensors()
    tensors = {k: np.array(v, order="C") for k, v in sorted(weights.items())}
    return atomic_write(path, lambda tmp: st.save_file(tensors, tmp))


def save_arrays(arrays: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Write an ``.npz`` file atomically (``dlc run -o``)."""

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return atomic_write(path, write)


def read_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Read a safetensors file (no pickle is ever involved)."""
    st = _safetensors()
    try:
        return dict(st.load_file(str(path)))
    except FileNotFoundError:
        raise DlcError(f"no such weights file: {path}") from None
    except Exception as exc:  # safetensors raises its own types for corrupt files
        raise DlcError(f"cannot read weights file {path}: {exc}") from None


def check_weights(
    net: Network | Graph, weights: Mapping[str, Any] | str | Path
) -> dict[str, np.ndarray]:
    """The weights for ``net`` as arrays, or one WeightsError naming every problem."""
    graph = net.graph if hasattr(net, "graph") else net
    if isinstance(weights, (str, Path)):
        weights = read_weights(weights)
    expected: dict[str, Param] = dict(graph.params())
    problems = []
    for name in expected.keys() - weights.keys():
        problems.append(f"missing: {name} {list(expected[name].shape)} {expected[name].dtype}")
    for name in weights.keys() - expected.keys():
        problems.append(f"unexpected: {name}")
    out = {}
    for name, p in expected.items():
        if name not in weights:
            continue
        value = np.asarray(weights[name])
        want = np.dtype(NP_DTYPES.get(p.dtype, np.float32))
        if tuple(value.shape) != p.shape:
            problems.append(
                f"wrong shape: {name} expected {list(p.shape)}, found {list(value.shape)}"
            )
        elif value.dtype != want:
            problems.append(f"wrong dtype: {name} expected {want}, found {value.dtype}")
        else:
            out[name] = value
    if problems:
        raise WeightsError(
            f"weights do not match network {graph.name} ({len(problems)} "
            "problem"
            + ("s" if len(problems) > 1 else "")
            + "):\n  "
            + "\n  ".join(sorted(problems))
        )
    return out
