"""Weights: deterministic initialisation with NumPy, safetensors files, validation.

``init_weights(net, seed)`` makes every parameter and buffer of the IR, by the spec's
``init`` statements or else PyTorch's default for the layer type, with PyTorch's gain and
fan formulas (``torch.nn.init``). Each tensor draws from its own stream, seeded by
``(seed, crc32(name))``: the same spec and seed give the same bytes on every run and
machine, and adding a layer does not change the others' values.
"""

from __future__ import annotations

import hashlib
import math
import os
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..compiler.elaborate.values import describe
from ..compiler.errors import DlcError
from ..compiler.ir.graph import Graph, Init, Param
from ..extras import require
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
    """Weights that do not fit the network (every offending name, with expected and
    found), or a weights file that cannot be read as one: bad data rather than a bad
    command, so ``dlc`` exits with 1."""


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


def init_weights(
    net: Network | Graph, seed: int = 0, *, max_bytes: float | None = None
) -> dict[str, np.ndarray]:
    """Every parameter and buffer of ``net``, keyed by its IR name.

    Weights that would need more than ``max_bytes`` of memory (by default the memory
    available now; ``math.inf``: no limit) are refused before any is drawn, with a
    DlcError located at the biggest layer.
    """
    from ..compiler.ops import OPS

    graph = net.graph if hasattr(net, "graph") else net
    _check_size(graph, max_bytes)
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
            out[name] = values.astype(_dtype(p))
    return out


def _dtype(p: Param) -> np.dtype:
    return np.dtype(NP_DTYPES.get(p.dtype, np.float32))


def _nbytes(p: Param) -> int:
    return math.prod(p.shape) * _dtype(p).itemsize


def _check_size(graph: Graph, max_bytes: float | None) -> None:
    limit = available_memory() if max_bytes is None else max_bytes
    per_node = [(sum(_nbytes(p) for _, p in n.param_items()), n) for n in graph.nodes]
    weights = sum(b for b, _ in per_node)
    # Each tensor is drawn in float64 before its cast: the largest draw comes on top.
    draw = 8 * max((math.prod(p.shape) for _, p in graph.params()), default=0)
    if limit is None or weights + draw <= limit:
        return
    biggest, node = max(per_node, key=lambda bn: bn[0])
    shapes = ", ".join(f"{name} {list(p.shape)}" for name, p in node.param_items())
    what = (
        f"the limit of {format_bytes(limit)}"
        if max_bytes is not None
        else f"the {format_bytes(limit)} of memory available (dlc init --max-memory, "
        "init_weights(max_bytes=...) set another limit)"
    )
    raise DlcError(
        f"initialising the weights of {graph.name} needs {format_bytes(weights + draw)} of "
        f"memory ({format_bytes(weights)} of weights, {format_bytes(draw)} to draw the "
        f"largest in float64), more than {what}; the biggest layer is {node.name}, "
        f"{format_bytes(biggest)}: {shapes}",
        node.span,
    )


def available_memory() -> int | None:
    """Bytes of memory free for a new allocation (Linux: MemAvailable; elsewhere the
    physical memory), or None where the system does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows), or no such name
        return None


def format_bytes(n: float) -> str:
    """``123 bytes``, ``1.5 KiB`` ... ``2.0 TiB``."""
    units = ["KiB", "MiB", "GiB", "TiB"]
    if n < 1024:
        return f"{n:,.0f} bytes"
    while n >= 1024 and units:
        n /= 1024
        unit = units.pop(0)
    return f"{n:,.1f} {unit}"


# ---- files ---------------------------------------------------------------------------


# The metadata dlc writes into a safetensors file: the network the weights are for, and a
# fingerprint of their names, shapes and dtypes (equal to the network's when they fit).
NETWORK_KEY, FINGERPRINT_KEY = "dlc.network", "dlc.fingerprint"
MAX_PROBLEMS_SHOWN = 20  # a file for another network can have hundreds


def fingerprint(entries: Iterable[tuple[str, Sequence[int], str]]) -> str:
    """A short hash of (name, shape, dtype) triples, in any order."""
    text = "\n".join(sorted(f"{n} {list(shape)} {dtype}" for n, shape, dtype in entries))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def network_name(graph: Graph) -> str:
    """``ResNet(classes=10)``: the network and its parameters, as messages show them."""
    return f"{graph.name}({', '.join(f'{k}={describe(v)}' for k, v in graph.args.items())})"


def save_weights(
    weights: Mapping[str, np.ndarray], path: str | Path, network: Network | Graph | None = None
) -> Path:
    """Write a safetensors file atomically; its metadata holds the weights' fingerprint,
    and ``network``'s name and parameters when given (a later check names them)."""
    st = require("safetensors.numpy", "writing weights files")
    tensors = {k: np.asarray(v, order="C") for k, v in sorted(weights.items())}  # no copy
    found = fingerprint((k, v.shape, v.dtype.name) for k, v in tensors.items())
    metadata = {FINGERPRINT_KEY: found}
    if network is not None:
        metadata[NETWORK_KEY] = network_name(getattr(network, "graph", network))
    return atomic_write(path, lambda tmp: st.save_file(tensors, tmp, metadata=metadata))


def save_arrays(arrays: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Write an ``.npz`` file atomically (``dlc run -o``)."""

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return atomic_write(path, write)


def read_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Read a safetensors file (no pickle is ever involved)."""
    return _read(Path(path))[0]


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors and metadata of a safetensors file. A missing or unreadable file is a
    DlcError; a file that holds no safetensors a WeightsError."""
    safetensors = require("safetensors", "reading weights files")
    if path.is_dir():
        raise DlcError(f"cannot read weights file {path}: it is a directory")
    if not path.exists():
        raise DlcError(f"no such weights file: {path}")
    try:
        with safetensors.safe_open(str(path), "np") as f:
            metadata = f.metadata() or {}
            tensors = {}
            for name in f.keys():
                try:
                    tensors[name] = f.get_tensor(name)
                except TypeError:  # a dtype NumPy has no type for (bfloat16, float8 ...)
                    dtype = f.get_slice(name).get_dtype()
                    raise WeightsError(
                        f"cannot read weights file {path}: {name} is {dtype}, which NumPy "
                        f"cannot hold (dlc reads {', '.join(NP_DTYPES)})"
                    ) from None
    except OSError as exc:
        raise DlcError(f"cannot read weights file {path}: {exc.strerror or exc}") from None
    except WeightsError:
        raise
    except Exception as exc:  # safetensors raises its own error type for bad files
        why = _why_unreadable(path, exc)
        raise WeightsError(f"cannot read weights file {path}: {why}") from None
    return tensors, metadata


def _why_unreadable(path: Path, exc: Exception) -> str:
    with open(path, "rb") as f:
        head = f.read(9)
    # A safetensors file starts with the length of its JSON header (8 bytes), then "{".
    if head[8:9] == b"{":
        return f"truncated or damaged ({exc})"
    if head[:2] == b"PK" or head[:1] == b"\x80":
        return (
            "not a safetensors file but a pickle (a torch.save checkpoint?), which dlc never "
            "loads: it can run code; save the state dict with safetensors.torch.save_file"
        )
    return "not a safetensors file"


def check_weights(
    net: Network | Graph, weights: Mapping[str, Any] | str | Path
) -> dict[str, np.ndarray]:
    """The weights for ``net`` as arrays, or one WeightsError naming every problem."""
    graph = net.graph if hasattr(net, "graph") else net
    metadata: dict[str, str] = {}
    ours = network_name(graph)
    path = weights if isinstance(weights, (str, Path)) else None
    if path is not None:
        weights, metadata = _read(Path(path))
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
        want = _dtype(p)
        if tuple(value.shape) != p.shape:
            problems.append(
                f"wrong shape: {name} expected {list(p.shape)}, found {list(value.shape)}"
            )
        elif value.dtype != want:
            problems.append(f"wrong dtype: {name} expected {want}, found {value.dtype}")
        else:
            out[name] = value
    if problems:
        head = f"weights do not match network {ours}"
        saved_for = metadata.get(NETWORK_KEY)
        if saved_for and metadata.get(FINGERPRINT_KEY) != _fingerprint_of(expected):
            head = (
                f"{path} holds weights for network {saved_for}, not {ours}"
                if saved_for != ours
                else f"{path} holds weights for {ours} as it was when they were saved, not now"
            )
        shown = sorted(problems)[:MAX_PROBLEMS_SHOWN]
        if len(problems) > len(shown):
            shown.append(f"... and {len(problems) - len(shown)} more")
        raise WeightsError(
            f"{head} ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n  "
            + "\n  ".join(shown)
        )
    return out


def _fingerprint_of(params: Mapping[str, Param]) -> str:
    return fingerprint((k, p.shape, _dtype(p).name) for k, p in params.items())
