"""The ``dlc`` command line: check, summary, ir.

Exit codes: 0 success, 1 errors in a spec, 2 usage errors (bad flags, unreadable files).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .elaborate import constant
from .errors import DlcError
from .network import Network, _compile
from .parser import parse_expr
from .program import Program, load_program

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
    return _compile(program, args.network, parse_dims(args.dim), parse_overrides(args.set))


def cmd_check(args) -> int:
    status = EXIT_OK
    for path in args.files:
        try:
            program = _read(path)
            names = [args.network] if args.network else program.root_networks
            errors: list[DlcError] = []
            for name in names:
                try:
                    _compile(program, name, parse_dims(args.dim), parse_overrides(args.set))
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


def cmd_init(args) -> int:
    from .weights import init_weights, save_weights

    net = _one(args)
    weights = init_weights(net, seed=args.seed)
    path = save_weights(weights, args.output)
    total = sum(v.size for v in weights.values())
    print(f"{path}: {len(weights)} tensors, {total:,} values (seed {args.seed})")
    return EXIT_OK


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
    p = sub.add_parser("ir", help="print the IR, one node a line")
    p.add_argument("file", metavar="FILE")
    _common(p)
    p.set_defaults(run=cmd_ir)
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
        print(err, file=sys.stderr)
        # A spec error has a location; one without (no such network, ...) is a usage error.
        return EXIT_SPEC if err.span is not None else EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
