"""The ``dlc`` command line: check, summary, init, run, compile, ir, ops, train, eval, plot,
search, draw, lsp, completion.

Exit codes: 0 success, 1 errors in a spec or bad data (weights, inputs), 2 usage errors
(bad flags, unreadable files, missing optional packages). Every flag is checked before
any work, so a usage error never leaves a partial output.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .. import __version__
from ..extras import check_installed
from ..runtime.files import write_text
from .elaborate.elaborator import constant
from .elaborate.values import suggest
from .errors import DlcError
from .frontend.parser import parse_expr
from .frontend.program import Program, load_program
from .ir.symbolic import Sym
from .network import Network, _compile

EXIT_OK, EXIT_SPEC, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # as shells report SIGINT


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
    try:
        return load_program(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _one(args) -> Network:
    program = _read(args.file)
    dims = parse_dims(args.dim)
    net = _compile(program, args.network, dims, parse_overrides(args.set))
    _check_dims(dims, net.graph.symbols, f"network {net.name}")
    _warn(net)
    return net


def _check_dims(dims: Mapping[str, int], known: set[str], where: str) -> None:
    """A --dim that names no symbolic dim of the inputs (``known``) would bind nothing."""
    for name in sorted(dims.keys() - known):
        raise UsageError(
            f"--dim {name}: no symbolic input dim {name} in {where}"
            + suggest(name, known)
            + f" (dims: {', '.join(sorted(known)) or 'none'})"
        )


def _print_located(err: DlcError) -> None:
    """A located error or warning on stderr, its source line highlighted where the
    terminal shows colour (the text is the same either way)."""
    from .frontend.highlight import print_error  # only on the error path: ~50 ms

    print_error(str(err))


def _warn(net: Network) -> None:
    """Located warnings go to stderr; they never change the exit code."""
    for w in net.warnings:
        _print_located(w)


def cmd_check(args) -> int:
    status = EXIT_OK
    dims, overrides = parse_dims(args.dim), parse_overrides(args.set)
    known: set[str] = set()  # a --dim may bind a dim of any network checked
    for path in args.files:
        try:
            program = _read(path)
            names = [args.network] if args.network else program.root_networks
            errors: list[DlcError] = []
            for name in names:
                try:
                    net = _compile(program, name, dims, overrides)
                except DlcError as err:
                    errors.extend(err.errors)
                    continue
                _warn(net)
                known |= net.graph.symbols
            # An error with no place in the spec (a --set naming no parameter, --network
            # naming no network) is a usage error, as in every other command.
            recipes = [] if args.network else program.root_recipes
            searches = [] if args.network else program.root_searches
            if recipes or searches:  # imported only then: most files have neither
                from .recipe.elaborate import load_recipe
                from .recipe.search import elaborate_search
            for name in recipes:
                try:
                    load_recipe(program, name)
                except DlcError as err:
                    errors.extend(err.errors)
            for name in searches:
                try:
                    elaborate_search(program, name)
                except DlcError as err:
                    errors.extend(err.errors)
            for err in errors:
                if err.span is None:
                    raise UsageError(err.message)
            if errors:  # a search re-checks its recipe: each error once
                unique = {(e.message, e.span): e for e in errors}
                raise DlcError.group(list(unique.values()))
            print(
                f"{path}: ok ({_count(names, 'network')}"
                + (f"; {_count(recipes, 'recipe')}" if recipes else "")
                + (f"; {_count(searches, 'search')}" if searches else "")
                + ")"
            )
        except DlcError as err:
            _print_located(err)
            status = EXIT_SPEC
    if status == EXIT_OK:  # a network that failed cannot say which dims it has
        _check_dims(dims, known, "the networks checked")
    return status


def _count(names: list[str], what: str) -> str:
    return f"{len(names)} {what}{'s' if len(names) != 1 else ''}" + (
        f": {', '.join(names)}" if names else ""
    )


def cmd_summary(args) -> int:
    if args.recipe is not None:
        from ..training.commands import recipe_summary

        if args.network or args.dim:
            raise UsageError("--recipe: the recipe names its network (drop --network, --dim)")
        return recipe_summary(args, parse_overrides(args.set))
    net = _one(args)
    print(
        net.summary(format=args.format, depth=args.depth),
        end="" if args.format == "table" else "\n",
    )
    return EXIT_OK


def cmd_train(args) -> int:
    from ..training.commands import cmd_train as train

    return train(args, parse_overrides(args.set))


def cmd_eval(args) -> int:
    from ..training.commands import cmd_eval as evaluate

    return evaluate(args, parse_overrides(args.set), _data_source(args))


def _data_source(args):
    """``--data``: a source expression, or a path read as the recipe's data source is."""
    if args.data is None:
        return None
    from .recipe.elaborate import data_source

    return data_source(_read(args.file), args.recipe, args.data)


def cmd_search(args) -> int:
    from ..training.commands import cmd_search as search

    return search(args)


DRAW_FORMATS = (".svg", ".dot", ".html")


def cmd_draw(args) -> int:
    from ..diagram import render

    out = Path(args.output) if args.output else None
    if out is not None and out.suffix.lower() not in DRAW_FORMATS:
        raise UsageError(f"-o {out}: write {', '.join(DRAW_FORMATS)}")
    net = _one(args)
    out = out or Path(f"{net.name}.svg")
    text = render(net, out.suffix.lower().lstrip("."), depth=args.depth, engine=args.engine)
    write_text(out, text)
    print(out)
    return EXIT_OK


def cmd_lsp(args) -> int:
    from ..lsp.server import serve

    serve()
    return EXIT_OK


def cmd_plot(args) -> int:
    from ..training.commands import cmd_plot as plot

    return plot(args)


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
    weights = init_weights(net, seed=args.seed, max_bytes=args.max_memory)
    path = save_weights(weights, args.output, net)
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

    # The batch (a symbol only ever at axis 0) is 1 unless --dim says otherwise.
    inputs = [net.graph.node(n).type.shape for n in net.graph.inputs]
    batch = {str(s[0]) for s in inputs if s and isinstance(s[0], Sym)}
    batch -= {str(d) for s in inputs for d in s[1:] if isinstance(d, Sym)}
    try:
        return example_inputs(net.graph, np.random.default_rng(seed), dict.fromkeys(batch, 1))
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

    from ..runtime.weights import check_weights, init_weights, save_arrays

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
    if args.weights:
        weights = check_weights(net, args.weights)
        _warn_nonfinite(f"weights {args.weights}", weights)
    elif args.target in WEIGHTED_TARGETS:
        weights = init_weights(net, args.seed or 0, max_bytes=args.max_memory)
    else:
        weights = None
    print(TARGETS[args.target](net, weights, args))
    return EXIT_OK


def _compile_onnx(net, weights, args) -> str:
    from dlc.backends.onnx import DEFAULT_OPSET, export

    opset = DEFAULT_OPSET if args.opset is None else args.opset
    path = export(net, weights, args.output, opset=opset)
    return f"{path}: {net.name}, ONNX opset {opset}, {path.stat().st_size:,} bytes"


def _compile_torch(net, weights, args) -> str:
    """The source holds no weights (--weights only checks that a file fits); the message
    says how to load them, from that file or from one ``dlc init`` writes."""
    from dlc.backends.torch_source import emit

    path = write_text(args.output, emit(net))
    lines = [f"{path}: {net.name} as PyTorch source ({net.params:,} parameters)"]
    weights_file = args.weights or str(Path(args.output).with_suffix(".safetensors"))
    if not args.weights:  # the same flags make the same network
        flags = [f"--{flag}={v}" for flag in ("set", "dim") for v in getattr(args, flag)]
        flags += [f"--network={args.network}"] if args.network else []
        init = shlex.join(["dlc", "init", args.file, *flags, "-o", weights_file])
        lines.append(f"weights: {init}")
    lines.append(
        f"to load them: from safetensors.torch import load_file; "
        f"{net.name}().load_state_dict(load_file({weights_file!r}))"
    )
    return "\n".join(lines)


TARGETS = {"onnx": _compile_onnx, "torch": _compile_torch}
WEIGHTED_TARGETS = {"onnx"}  # the torch source holds no weights


def cmd_completion(args) -> int:
    import shtab

    parser = build_parser()
    for action in _actions(parser):
        if action.dest in PATH_DESTS:
            action.complete = shtab.FILE  # what shtab reads: complete file names here
    print(shtab.complete(parser, args.shell))
    return EXIT_OK


PATH_DESTS = {"file", "files", "weights", "output", "input"}


def _actions(parser: argparse.ArgumentParser):
    """Every argument of ``parser`` and its subcommands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for p in action.choices.values():
                yield from _actions(p)
        else:
            yield action


def _check_flags(args) -> None:
    """What can be checked before any work: files to read exist, outputs have a folder and
    overwrite no input, the optional packages the flags need are installed."""
    from ..runtime.files import target_folder

    reads = [(None, f) for f in getattr(args, "files", None) or [getattr(args, "file", None)]]
    reads += [("--weights", getattr(args, "weights", None))]
    reads = [(flag, path) for flag, path in reads if path is not None]
    for flag, path in reads:
        where = f"{flag}: " if flag else ""
        if Path(path).is_dir():
            raise UsageError(f"{where}{path} is a directory, not a file")
        if not Path(path).is_file():
            raise UsageError(f"{where}no such file: {path}")
    output = getattr(args, "output", None)
    if output:
        if Path(output).is_dir():
            raise UsageError(f"-o: cannot write {output}: it is a directory")
        try:
            target_folder(Path(output))
        except DlcError as err:
            raise UsageError(f"-o: {err.message}") from None
        if any(Path(output).resolve() == Path(path).resolve() for _, path in reads):
            raise UsageError(f"-o: {output} is an input of the command")
    if getattr(args, "target", None) == "torch":
        for flag, why in (("opset", ""), ("seed", NO_WEIGHTS), ("max_memory", NO_WEIGHTS)):
            if getattr(args, flag) is not None:
                raise UsageError(f"--{flag.replace('_', '-')}: only for --target onnx{why}")
    # A command that needs several packages suggests its own extra, which brings them all.
    extra = {"train": "train", "eval": "train", "search": "search"}.get(args.command)
    for purpose, package in _packages(args):
        check_installed(package, purpose, extra)


NO_WEIGHTS = " (the PyTorch source holds no weights; --weights checks a file for it)"


def _packages(args) -> list[tuple[str, str]]:
    """(the flag, an optional package it needs) for each such flag given."""
    backend, target = getattr(args, "backend", None), getattr(args, "target", None)
    needs = [
        (args.command == "init", "dlc init", "safetensors"),
        (getattr(args, "weights", None), "--weights", "safetensors"),
        (backend == "torch", "--backend torch", "torch"),
        (backend == "onnxruntime", "--backend onnxruntime", "onnx"),
        (backend == "onnxruntime", "--backend onnxruntime", "onnxruntime"),
        (target == "onnx", "--target onnx", "onnx"),
        (args.command in ("train", "eval"), f"dlc {args.command}", "torch"),
        (args.command in ("train", "eval"), f"dlc {args.command}", "safetensors"),
        (args.command == "plot", "dlc plot", "matplotlib"),
        (args.command == "search", "dlc search", "torch"),
        (args.command == "search", "dlc search", "optuna"),
        (args.command == "lsp", "dlc lsp", "pygls"),
        (args.command == "lsp", "dlc lsp", "lsprotocol"),
    ]
    return [(purpose, package) for given, purpose, package in needs if given]


# One example (or two) per command, shown at the end of its --help.
EXAMPLES = {
    "check": "dlc check specs/*.dl\n  dlc check specs/lenet5.dl --set classes=100",
    "summary": "dlc summary specs/resnet18.dl --depth 1\n"
    "  dlc summary specs/sentiment_lstm.dl --dim T=128 --format json",
    "init": "dlc init specs/lenet5.dl --seed 1 -o lenet5.safetensors",
    "run": 'python -c "import numpy as np; '
    "np.save('x.npy', np.random.rand(1, 3, 32, 32).astype('float32'))\"\n"
    "  dlc run net.dl -i x.npy --weights net.safetensors\n"
    "  (net.dl declares input x: float32[N, 3, 32, 32]; -i x=x.npy names the input)",
    "compile": "dlc compile specs/resnet18.dl --target onnx --weights resnet18.safetensors "
    "-o resnet18.onnx\n  dlc compile specs/lenet5.dl --target torch -o lenet5.py",
    "ir": "dlc ir specs/lenet5.dl --set classes=100",
    "ops": "dlc ops --format markdown > ops.md",
    "train": "dlc train specs/digits.dl --set lr=0.1\n"
    "  dlc train specs/digits.dl --resume runs/DigitsSGD\n"
    "  dlc train specs/digits.dl --nproc 2",
    "eval": "dlc eval specs/digits.dl --weights runs/DigitsSGD/weights.safetensors",
    "plot": "dlc plot runs/DigitsSGD -o curves.svg",
    "search": "dlc search specs/digits.dl --trials 8 --jobs 2",
    "draw": "dlc draw specs/resnet18.dl --depth 1 -o resnet18.svg\n"
    "  dlc draw specs/unet.dl -o unet.html",
    "lsp": "dlc lsp   (started by an editor: see editors/vscode/README.md)",
    "completion": "dlc completion bash > ~/.local/share/bash-completion/completions/dlc\n"
    "  dlc completion zsh > ~/.zfunc/_dlc\n"
    "  dlc completion fish > ~/.config/fish/completions/dlc.fish",
}
SHELLS = ("bash", "zsh", "fish")


def _command(sub, name: str, summary: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=summary,
        description=summary[:1].upper() + summary[1:] + ".",
        epilog=f"example:\n  {EXAMPLES[name]}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _natural(text: str) -> int:
    """argparse type: an integer >= 0 (argparse names the flag in its message)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _size(text: str) -> float:
    """argparse type: a byte count such as ``512M``, ``16G``, ``1.5T`` (binary units)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", text.strip(), re.IGNORECASE)
    if not m or float(m[1]) <= 0:
        raise argparse.ArgumentTypeError(f"expected a size such as 512M or 16G, got {text!r}")
    return float(m[1]) * UNITS[m[2].upper()]


def _weights_flags(p: argparse.ArgumentParser, seed: int | None) -> None:
    source = p.add_mutually_exclusive_group()
    source.add_argument("--weights", metavar="W", help="a safetensors file (default: --seed 0)")
    source.add_argument(
        "--seed", type=_natural, default=seed, help="initialise weights from this seed"
    )


def _max_memory(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-memory",
        type=_size,
        metavar="SIZE",
        help="refuse to initialise weights needing more (default: the memory available)",
    )


def _common(p: argparse.ArgumentParser, files: bool = False) -> None:
    if files:
        p.add_argument("files", nargs="+", metavar="FILE", help="the .dl files to check")
    else:
        p.add_argument("file", metavar="FILE", help="the .dl file")
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


def _recipe_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="the .dl file")
    p.add_argument("--recipe", "-r", help="which train section (needed if it has several)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a recipe parameter (a .dl expression)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlc", description="Compile .dl network specs.")
    parser.add_argument("--version", action="version", version=f"dlc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = _command(sub, "check", "parse, elaborate and shape-check specs")
    _common(p, files=True)
    p.set_defaults(run=cmd_check)
    p = _command(sub, "summary", "layer table and totals (params, MACs, memory)")
    _common(p)
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.add_argument("--depth", type=_natural, help="block nesting levels to show (0: none)")
    p.add_argument(
        "--recipe", "-r", help="show a train section's network and resolved recipe (reads its data)"
    )
    p.set_defaults(run=cmd_summary)
    p = _command(sub, "init", "write deterministic initial weights (safetensors)")
    _common(p)
    p.add_argument("--seed", type=_natural, default=0, help="the random seed (default 0)")
    _max_memory(p)
    p.add_argument("-o", "--output", required=True, metavar="WEIGHTS", help="the file to write")
    p.set_defaults(run=cmd_init)
    p = _command(sub, "run", "run a network on .npy inputs")
    _common(p)
    _weights_flags(p, seed=0)
    data = p.add_mutually_exclusive_group()
    data.add_argument(
        "--input",
        "-i",
        action="append",
        default=[],
        metavar="NAME=PATH.npy",
        help="an input array (NAME= may be left out for a network with one input)",
    )
    data.add_argument(
        "--random-input",
        type=int,
        nargs="?",
        const=0,
        metavar="SEED",
        help="random inputs of the spec's shapes (--dim binds symbolic dims), token ids in range",
    )
    p.add_argument(
        "--backend", choices=sorted(BACKENDS), default="numpy", help="what runs the network"
    )
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
    p = _command(sub, "compile", "compile a network for a target (onnx, torch)")
    _common(p)
    p.add_argument(
        "--target", choices=sorted(TARGETS), required=True, help="an ONNX model or PyTorch source"
    )
    _weights_flags(p, seed=None)  # None: not given (the torch source holds no weights)
    _max_memory(p)
    p.add_argument("--opset", type=int, help="ONNX opset (default 17; --target onnx only)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the file to write")
    p.set_defaults(run=cmd_compile)
    p = _command(sub, "ir", "print the IR, one node a line")
    _common(p)
    p.set_defaults(run=cmd_ir)
    p = _command(sub, "ops", "list every op: signature, defaults, one-line doc")
    p.add_argument(
        "--format", choices=("text", "json", "markdown"), default="text", help="output format"
    )
    p.set_defaults(run=cmd_ops)
    p = _command(sub, "train", "train a network by a train section of its file")
    _recipe_flags(p)
    p.add_argument("--out", "-o", metavar="DIR", help="the run folder (default: runs/RECIPE)")
    p.add_argument("--resume", metavar="DIR", help="continue a run from its last checkpoint")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument(
        "--nproc", type=_natural, metavar="N", help="train in N processes (torch.distributed)"
    )
    p.set_defaults(run=cmd_train)
    p = _command(sub, "eval", "a recipe's loss and metrics on its test split or --data")
    _recipe_flags(p)
    p.add_argument("--weights", required=True, metavar="W", help="a safetensors file")
    p.add_argument(
        "--data",
        metavar="SOURCE",
        help="a data file (read as the recipe's data is) or a source: 'npz(\"x.npz\", ...)'",
    )
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.set_defaults(run=cmd_eval)
    p = _command(sub, "search", "run a search section: hyper-parameter search on Optuna")
    p.add_argument("file", metavar="FILE", help="the .dl file")
    p.add_argument("--search", "-s", help="which search section (needed if it has several)")
    p.add_argument("--trials", type=_natural, metavar="N", help="the study's total trials")
    p.add_argument("--storage", metavar="URL", help="an Optuna storage (default: DIR/study.db)")
    p.add_argument("--study", metavar="NAME", help="the study's name (default: the section's)")
    p.add_argument("--jobs", type=_natural, default=1, metavar="N", help="local workers")
    p.add_argument("--out", "-o", metavar="DIR", help="default: searches/SEARCH")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.set_defaults(run=cmd_search)
    p = _command(sub, "plot", "draw a run's learning curves (SVG, PNG or PDF)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder of dlc train")
    p.add_argument("-o", "--output", metavar="OUT", help="default: RUN_DIR/curves.svg")
    p.set_defaults(run=cmd_plot)
    p = _command(sub, "draw", "draw a network: SVG (laid out by dlc), DOT or HTML")
    _common(p)
    p.add_argument(
        "--depth", type=_natural, help="block levels to open; deeper blocks are one box each"
    )
    p.add_argument(
        "--engine",
        choices=("dlc", "dot"),
        default="dlc",
        help="lay out SVG by dlc's own layered layout (default) or Graphviz dot (if installed)",
    )
    p.add_argument(
        "-o", "--output", metavar="OUT", help="OUT.svg, OUT.dot or OUT.html (default NETWORK.svg)"
    )
    p.set_defaults(run=cmd_draw)
    p = _command(sub, "lsp", "run the .dl language server on stdin/stdout (for editors)")
    p.set_defaults(run=cmd_lsp)
    p = _command(sub, "completion", "print a shell completion script")
    p.add_argument("shell", choices=SHELLS, help="the shell")
    p.set_defaults(run=cmd_completion)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check_flags(args)
        return args.run(args)
    except UsageError as err:
        print(f"dlc: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except DlcError as err:
        # A spec error has a location; one without (no such network, ...) is a usage error,
        # but for weights that do not fit or cannot be read (bad data, as a spec error).
        if err.span is None:
            from ..runtime.weights import WeightsError

            print(f"dlc: error: {err.message}", file=sys.stderr)
            return EXIT_SPEC if isinstance(err, WeightsError) else EXIT_USAGE
        _print_located(err)
        return EXIT_SPEC
    except MemoryError:  # beyond the estimate init_weights checks first
        print(f"dlc: error: not enough memory for dlc {args.command}", file=sys.stderr)
        return EXIT_SPEC
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # a failure no check foresaw (a library's, inside a backend)
        if os.environ.get("DLC_TRACEBACK"):
            raise
        print(
            f"dlc: error: dlc {args.command} failed: {type(exc).__name__}: {exc} "
            "(set DLC_TRACEBACK=1 to see where)",
            file=sys.stderr,
        )
        return EXIT_SPEC


if __name__ == "__main__":
    sys.exit(main())
