"""The ``dlc`` command line: check, summary, init, run, compile, ir, ops.

Exit codes: 0 success, 1 errors in a spec, 2 usage errors (bad flags, unreadable files).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..runtime.files import write_text
from .elaborate.elaborator import constant
from .errors import DlcError
from .frontend.parser import parse_expr
from .frontend.program import Program, load_program
from .network import Network, _compile

EXIT_OK, EXIT_SPEC, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad flags or unreadable files: exit code 2."""


def _pairs(items: Sequence[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip() or not value.strip():
            raise UsageError(f"{flag} expects NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def parse_overrides(items: Sequence[str]) -> dict:
    """``--set k=v``: each value is a .dl expression (``10``, ``"relu"``, ``[64, 128]``)."""
    out = {}
    for name, text in _pairs(items, "--set").items():
        try:
            out[name] = constant(parse_expr(text))
        except DlcError as err:
            raise UsageError(
                f"--set {name}: cannot read {text!r} as a value ({err.message})"
            ) from None
    return out


def parse_dims(items: Sequence[str]) -> dict[str, int]:
    out = {}
    for name, text in _pairs(items, "--dim").items():
        if not text.isdigit() or int(text) <= 0:
            raise UsageError(f"--dim {name}: expected a positive integer, got {text!r}")
        out[name] = int(text)
    return out


def _read(path: str) -> Program:
    if not Path(path).is_file():
        raise UsageError(f"no such file: {path}")
    try:
        return load_program(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _one(args) -> Network:
    program = _read(args.file)
    net = _compile(program, args.network, parse_dims(args.dim), parse_overrides(args.set))
    _warn(net)
    return net


def _warn(net: Network) -> None:
    """Located warnings go to stderr; they never change the exit code."""
    for w in net.warnings:
        print(w, file=sys.stderr)


def cmd_check(args) -> int:
    status = EXIT_OK
    for path in args.files:
        try:
            program = _read(path)
            names = [args.network] if args.network else program.root_networks
            errors: list[DlcError] = []
            for name in names:
                try:
                    _warn(_compile(program, name, parse_dims(args.dim), parse_overrides(args.set)))
                except DlcError as err:
                    errors.extend(err.errors)
            if errors:
                raise DlcError.group(errors)
            print(
                f"{path}: ok ({len(names)} network{'s' if len(names) != 1 else ''}"
                f"{': ' + ', '.join(names) if names else ''})"
            )
        except DlcError as err:
            print(err, file=sys.stderr)
            status = EXIT_SPEC
    return status


def cmd_summary(args) -> int:
    net = _one(args)
    print(
        net.summary(format=args.format, depth=args.depth),
        end="" if args.format == "table" else "\n",
    )
    return EXIT_OK


def cmd_ir(args) -> int:
    print(_one(args).ir())
    return EXIT_OK


def cmd_ops(args) -> int:
    from .ops import catalog

    print(
        {"text": catalog.as_text, "json": catalog.as_json, "markdown": catalog.as_markdown}[
            args.format
        ]()
    )
    return EXIT_OK


def cmd_init(args) -> int:
    from ..runtime.weights import init_weights, save_weights

    net = _one(args)
    weights = init_weights(net, seed=args.seed)
    path = save_weights(weights, args.output)
    total = sum(v.size for v in weights.values())
    print(f"{path}: {len(weights)} tensors, {total:,} values (seed {args.seed})")
    return EXIT_OK


def _read_inputs(net: Network, items: Sequence[str]) -> dict:
    """``--input name=path``; a single-input network may omit ``name=``. A missing file is
    a usage error; one whose contents are not an array is an InputError (bad data)."""
    names = list(net.inputs)
    out = {}
    for item in items:
        name, eq, path = item.partition("=")
        if not eq:
            if len(names) != 1:
                raise UsageError(f"--input {item!r}: name the input (one of {', '.join(names)})")
            name, path = names[0], item
        if name not in net.inputs:
            raise UsageError(f"--input {name}: the network's inputs are {', '.join(names)}")
        if not Path(path).is_file():
            raise UsageError(f"--input {name}: cannot read {path}: no such file")
        out[name] = _load_array(name, path)
    missing = [n for n in names if n not in out]
    if missing:
        raise UsageError(f"missing --input for {', '.join(missing)} (or use --random-input)")
    return out


def _load_array(name: str, path: str):
    """The array in ``path``: a ``.npy`` file, or the array ``name`` (or the only one) of an
    ``.npz`` archive, told apart by their first bytes. Never unpickles."""
    import numpy as np

    from ..runtime.inputs import InputError

    where = f"--input {name}={path}"
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
            f.seek(0)
            if magic == b"\x93NUMPY":
                x = np.load(f, allow_pickle=False)
            elif magic.startswith(b"PK"):  # a zip archive: np.savez's .npz
                with np.load(f, allow_pickle=False) as archive:
                    arrays = {k: archive[k] for k in archive.files}
    except OSError as exc:
        raise UsageError(f"{where}: cannot read it: {exc.strerror or exc}") from None
    except (ValueError, EOFError) as exc:
        # allow_pickle=False refuses object arrays; truncated or corrupt files fail here too.
        raise InputError(f"{where}: not a valid .npy or .npz file ({exc})") from None
    if not magic:
        raise InputError(f"{where}: the file is empty")
    if magic.startswith(b"PK"):
        keys = [name] if name in arrays else list(arrays)
        if len(keys) != 1:
            raise InputError(
                f"{where}: the .npz archive holds {len(keys)} arrays ({', '.join(keys[:5])}), "
                f"none named {name}; pass one .npy file"
            )
        x = arrays[keys[0]]
    elif magic != b"\x93NUMPY":
        raise InputError(f"{where}: not a .npy file (it lacks the .npy header)")
    if x.dtype.kind not in "biufc":
        raise InputError(f"{where}: holds {x.dtype} values, not numbers")
    # A byte order other than the machine's is a property of the file, not of the data.
    return x if x.dtype.isnative else x.astype(x.dtype.newbyteorder("="))


def _random_inputs(net: Network, seed: int) -> dict:
    import numpy as np

    from ..runtime.inputs import InputError, example_inputs

    try:
        return example_inputs(net.graph, np.random.default_rng(seed))
    except InputError as err:
        raise UsageError(f"--random-input: {err.message} (see --dim)") from None


def _warn_nonfinite(what: str, arrays: dict) -> None:
    """NaN or inf in weights or inputs is a warning, not an error: such values are valid
    floats that every backend computes with alike (a mask may hold -inf on purpose), but
    mostly they come from a diverged training run, and the outputs will show it."""
    import numpy as np

    bad = [k for k, v in arrays.items() if v.dtype.kind in "fc" and not np.isfinite(v).all()]
    if bad:
        shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "")
        print(
            f"dlc: warning: {what}: NaN or inf in {len(bad)} of {len(arrays)} ({shown})",
            file=sys.stderr,
        )


def cmd_run(args) -> int:
    """Inputs that do not fit the network (shape, dtype, values, unreadable contents) are
    bad data: exit code 1, as for a spec error."""
    from ..runtime.inputs import InputError

    try:
        return _run(args)
    except InputError as err:
        print(err if err.span is not None else f"dlc: error: {err.problem}", file=sys.stderr)
        return EXIT_SPEC
    except MemoryError:
        print(f"dlc: error: not enough memory to run {args.file} on these inputs", file=sys.stderr)
        return EXIT_SPEC


def _run(args) -> int:
    import statistics
    import time

    import numpy as np

    from ..runtime.files import target_folder
    from ..runtime.weights import check_weights, init_weights, save_arrays

    if args.output:  # a bad -o is reported before the run, not after it
        target_folder(Path(args.output))
        if Path(args.output).is_dir():
            raise UsageError(f"-o {args.output}: is a directory")
    if args.time is not None and args.time < 1:
        raise UsageError(f"--time: expected a positive number of runs, got {args.time}")
    net = _one(args)
    if args.random_input is not None:
        inputs = _random_inputs(net, args.random_input)
    else:
        inputs = _read_inputs(net, args.input)
        _warn_nonfinite("inputs", inputs)
    weights = check_weights(net, args.weights) if args.weights else init_weights(net, args.seed)
    if args.weights:
        _warn_nonfinite(f"weights {args.weights}", weights)
    forward = BACKENDS[args.backend](net, weights)
    times = []
    for _ in range(args.time or 1):
        start = time.perf_counter()
        outputs = forward(inputs)
        times.append(time.perf_counter() - start)
    named = dict(zip(net.outputs, outputs))
    if args.output:
        path = save_arrays(named, args.output)
        print(f"{path}: {', '.join(f'{k} {list(v.shape)}' for k, v in named.items())}")
    else:
        for name, value in named.items():
            flat = value.astype(np.float64).ravel()
            head = ", ".join(f"{v:.6g}" for v in flat[:4])
            print(
                f"{name}: {value.dtype}{list(value.shape)} mean={flat.mean():.6g} "
                f"std={flat.std():.6g} [{head}{', ...' if flat.size > 4 else ''}]"
            )
    if args.time is not None or args.random_input is not None:
        runs = f"median of {len(times)} runs" if len(times) > 1 else "1 run"
        print(f"time: {statistics.median(times) * 1e3:.4g} ms ({args.backend}, {runs})")
    return EXIT_OK


# Each backend as a function of the network and weights that returns the forward pass: a
# function of the inputs (NumPy arrays by name) returning the outputs as a tuple, which
# checks the inputs first (runtime/inputs.py).
def _run_numpy(net, weights):
    from dlc.backends import numpy as backend

    compiled = backend.compile(net, weights)
    return lambda inputs: _tuple(compiled(**inputs))


def _run_torch(net, weights):
    import torch

    from dlc.backends.torch import build

    module = build(net, weights).eval()

    def forward(inputs):
        with torch.no_grad():
            out = module(**{k: torch.from_numpy(v) for k, v in inputs.items()})
        return tuple(t.numpy() for t in _tuple(out))

    return forward


def _run_onnxruntime(net, weights):
    from dlc.backends import onnx as backend

    compiled = backend.compile(net, weights)
    return lambda inputs: _tuple(compiled(**inputs))


def _tuple(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


BACKENDS = {"numpy": _run_numpy, "torch": _run_torch, "onnxruntime": _run_onnxruntime}


def cmd_compile(args) -> int:
    from ..runtime.weights import check_weights, init_weights

    net = _one(args)
    weights = None
    if args.target in WEIGHTED_TARGETS:
        weights = check_weights(net, args.weights) if args.weights else init_weights(net, args.seed)
    print(TARGETS[args.target](net, weights, args))
    return EXIT_OK


def _compile_onnx(net, weights, args) -> str:
    from dlc.backends.onnx import DEFAULT_OPSET, export

    opset = DEFAULT_OPSET if args.opset is None else args.opset
    path = export(net, weights, args.output, opset=opset)
    return f"{path}: {net.name}, ONNX opset {opset}, {path.stat().st_size:,} bytes"


def _compile_torch(net, weights, args) -> str:
    from dlc.backends.torch_source import emit

    path = write_text(args.output, emit(net))
    return f"{path}: {net.name} as PyTorch source ({net.params:,} parameters)"


TARGETS = {"onnx": _compile_onnx, "torch": _compile_torch}
WEIGHTED_TARGETS = {"onnx"}  # the torch source holds no weights


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--network", "-n", help="which network of the file (needed if it has several)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a network parameter (a .dl expression)",
    )
    p.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=INT",
        help="bind a symbolic input dim, e.g. T=128",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlc", description="Compile .dl network specs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("check", help="parse, elaborate and shape-check specs")
    p.add_argument("files", nargs="+", metavar="FILE")
    _common(p)
    p.set_defaults(run=cmd_check)
    p = sub.add_parser("summary", help="layer table and totals (params, MACs, memory)")
    p.add_argument("file", metavar="FILE")
    _common(p)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--depth", type=int, default=None, help="block nesting levels to show")
    p.set_defaults(run=cmd_summary)
    p = sub.add_parser("init", help="write deterministic initial weights (safetensors)")
    p.add_argument("file", metavar="FILE")
    _common(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True, metavar="WEIGHTS")
    p.set_defaults(run=cmd_init)
    p = sub.add_parser("run", help="run a network on .npy inputs")
    p.add_argument("file", metavar="FILE")
    _common(p)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--weights", metavar="W", help="a safetensors file (default: --seed 0)")
    source.add_argument("--seed", type=int, default=0, help="initialise weights from this seed")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--input", "-i", action="append", default=[], metavar="NAME=PATH.npy")
    data.add_argument(
        "--random-input",
        type=int,
        nargs="?",
        const=0,
        metavar="SEED",
        help="random inputs of the spec's shapes (--dim binds symbolic dims), token ids in range",
    )
    p.add_argument("--backend", choices=sorted(BACKENDS), default="numpy")
    p.add_argument(
        "--time",
        type=int,
        nargs="?",
        const=10,
        metavar="RUNS",
        help="run RUNS times (default 10) and print the median time",
    )
    p.add_argument("-o", "--output", metavar="OUT.npz", help="write the outputs (npz)")
    p.set_defaults(run=cmd_run)
    p = sub.add_parser("compile", help="compile a network for a target (onnx, torch)")
    p.add_argument("file", metavar="FILE")
    _common(p)
    p.add_argument("--target", choices=sorted(TARGETS), required=True)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--weights", metavar="W", help="a safetensors file (default: --seed 0)")
    source.add_argument("--seed", type=int, default=0, help="initialise weights from this seed")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17)")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    p.set_defaults(run=cmd_compile)
    p = sub.add_parser("ir", help="print the IR, one node a line")
    p.add_argument("file", metavar="FILE")
    _common(p)
    p.set_defaults(run=cmd_ir)
    p = sub.add_parser("ops", help="list every op: signature, defaults, one-line doc")
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.set_defaults(run=cmd_ops)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UsageError as err:
        print(f"dlc: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except DlcError as err:
        # A spec error has a location; one without (no such network, ...) is a usage error.
        if err.span is None:
            print(f"dlc: error: {err.message}", file=sys.stderr)
            return EXIT_USAGE
        print(err, file=sys.stderr)
        return EXIT_SPEC
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
