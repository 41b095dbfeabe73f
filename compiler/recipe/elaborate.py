"""Elaborating a ``train`` section: its body run like a network's (``let``, ``if``, the
recipe's parameters, compile-time expressions), each key's value checked against the
schema, then the recipe checked against its network (outputs, ranks, classes).

Every mistake is a located error, and independent mistakes are reported together, before
any data is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..elaborate.elaborator import Elaborator
from ..elaborate.frame import Frame
from ..elaborate.values import POISON, describe, suggest
from ..errors import DlcError, Span
from ..frontend import ast
from ..frontend.program import Program, select
from ..ir.symbolic import Sym
from . import schema
from .recipe import FnCall, ModelRef, Recipe
from .schema import AUGMENT_RANK, FUNCTIONS, KEYS, REQUIRED, Bad, Fn, metric_name

_KIND_WORDS = {
    "source": "a data source",
    "loss": "a loss",
    "metric": "a metric",
    "optimizer": "an optimizer",
    "schedule": "a schedule",
    "augment": "an augmentation",
    "statement": "a statement",
}


def _choices(kind: str) -> str:
    return ", ".join(FUNCTIONS[kind])


class _RecipeElaborator:
    def __init__(self, program: Program):
        self.program = program
        self.elab = Elaborator(program)
        self.errors: list[DlcError] = []

    # -- the body
    def recipe(self, d: ast.TrainDef, overrides: Mapping[str, Any]) -> Recipe:
        # An override that names no parameter but a plain key (seed, epochs, batch, ...)
        # sets that key after the body: `--set seed=3` without a `seed` parameter.
        names = {p.name for p in d.params}
        keys = {
            k: v
            for k, v in overrides.items()
            if k not in names and k in KEYS and not isinstance(KEYS[k][0], str)
        }
        env = self.elab.bind_params(
            d, {k: v for k, v in overrides.items() if k not in keys}, what="recipe"
        )
        params = dict(env)
        frame = Frame("", env, None, (), {}, (), True)
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        self.statements(d.body, frame, values, spans)
        for k, v in keys.items():
            try:
                values[k] = KEYS[k][0](v)
            except Bad as bad:
                raise DlcError(schema.bad_value("", f"--set {k}", str(bad), v)) from None
        for key, (kind, default) in KEYS.items():
            if key in values:
                continue
            if default is REQUIRED:
                self.error(DlcError(f"recipe {d.name} sets no `{key}`", d.span))
            elif kind in ("optimizer", "schedule"):
                values[key] = self.bind(FUNCTIONS[kind][default], [], {}, d.span)
            else:
                values[key] = default
        if self.errors:
            raise DlcError.group(self.errors)
        if "checkpoint" not in values:
            values["checkpoint"] = self.bind(FUNCTIONS["statement"]["checkpoint"], [], {}, d.span)
        recipe = Recipe(
            name=d.name, path=Path(d.span.source.path), params=params, span=d.span, spans=spans,
            **values,
        )  # fmt: skip
        self.cross_check(recipe)
        if self.errors:
            raise DlcError.group(self.errors)
        return recipe

    def statements(self, body, frame: Frame, values: dict, spans: dict) -> None:
        for stmt in body:
            try:
                self.statement(stmt, frame, values, spans)
            except DlcError as err:
                self.error(err)

    def statement(self, stmt, frame: Frame, values: dict, spans: dict) -> None:
        if isinstance(stmt, ast.Assign):
            if stmt.name not in KEYS:
                hint = ""
                if stmt.name in FUNCTIONS["statement"]:
                    hint = f" (write `{stmt.name}(...)` as a statement)"
                raise DlcError(
                    f"unknown recipe key '{stmt.name}'"
                    + (suggest(stmt.name, KEYS) or hint or f" (keys: {', '.join(KEYS)})"),
                    Span(stmt.span.source, stmt.span.line, stmt.span.col, stmt.span.line,
                         stmt.span.col + len(stmt.name)),
                )  # fmt: skip
            value = self.key_value(stmt.name, stmt.value, frame)
            if value is not POISON:
                values[stmt.name] = value
                spans[stmt.name] = stmt.value.span
        elif isinstance(stmt, ast.Let):
            frame.env[stmt.name] = self.elab.eval(stmt.value, frame)
        elif isinstance(stmt, ast.If):
            branch = stmt.then if self.elab.truth(stmt.cond, frame) else stmt.orelse
            self.statements(branch, frame, values, spans)
        elif isinstance(stmt, ast.ExprStmt) and self._named(stmt.expr, "statement", frame):
            call = self.fn_call(stmt.expr, "statement", frame)
            values[call.name] = call
            spans[call.name] = stmt.span
        elif isinstance(stmt, ast.ExprStmt):
            raise DlcError(
                "a recipe statement is `key = value`, `early_stop(...)` or `checkpoint(...)`",
                stmt.span,
            )
        else:
            what = type(stmt).__name__.lower()
            raise DlcError(
                f"a {what} statement has no meaning in a train section (recipes hold "
                "`key = value`, `let`, `if`, `early_stop(...)` and `checkpoint(...)`)",
                stmt.span,
            )

    def error(self, err: DlcError) -> None:
        for e in err.errors:
            e.others = []
            if all((old.message, old.span) != (e.message, e.span) for old in self.errors):
                self.errors.append(e)

    # -- values
    def key_value(self, key: str, expr, frame: Frame) -> Any:
        kind = KEYS[key][0]
        if kind == "model":
            return self.model(expr, frame)
        if kind == "losses":
            return tuple(self.losses(expr, frame))
        if kind in ("metrics", "augments"):
            fn_kind = kind[:-1] if kind == "augments" else "metric"
            items = expr.items if isinstance(expr, ast.ListExpr) else (expr,)
            return tuple(self.fn_call(item, fn_kind, frame) for item in items)
        if kind == "split":
            if self._named(expr, "source", frame):
                return self.fn_call(expr, "source", frame)
            v = self.elab.eval(expr, frame)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
                raise DlcError(
                    f"{key} is a fraction in (0, 1) or a data source ({_choices('source')}), "
                    f"got {describe(v)}",
                    expr.span,
                )
            return float(v)
        if isinstance(kind, str):
            return self.fn_call(expr, kind, frame)
        v = self.elab.eval(expr, frame)
        if v is POISON:
            return POISON
        try:
            return kind(v)
        except Bad as bad:
            raise DlcError(schema.bad_value("", key, str(bad), v), expr.span) from None

    def _named(self, expr, kind: str, frame: Frame) -> bool:
        """Whether ``expr`` is a name or call of a recipe function of this kind (a name the
        recipe binds is a value instead)."""
        name = expr.func if isinstance(expr, ast.Call) else expr
        return (
            isinstance(name, ast.Name) and name.id in FUNCTIONS[kind] and name.id not in frame.env
        )

    def fn_call(self, expr, kind: str, frame: Frame) -> FnCall:
        if not self._named(expr, kind, frame):
            name = expr.func if isinstance(expr, ast.Call) else expr
            if isinstance(name, ast.Name) and name.id not in frame.env:
                other = next((k for k, t in FUNCTIONS.items() if name.id in t), None)
                what = f"{_KIND_WORDS[other]}" if other else "not a recipe function"
                raise DlcError(
                    f"expected {_KIND_WORDS[kind]} ({_choices(kind)}), got '{name.id}' ({what})"
                    + ("" if other else suggest(name.id, FUNCTIONS[kind])),
                    name.span,
                )
            raise DlcError(
                f"expected {_KIND_WORDS[kind]} ({_choices(kind)}), "
                f"got {describe(self.elab.eval(expr, frame))}",
                expr.span,
            )
        if isinstance(expr, ast.Name):
            return self.bind(FUNCTIONS[kind][expr.id], [], {}, expr.span)
        fn = FUNCTIONS[kind][expr.func.id]
        args = [(self.elab.eval(a, frame), a.span) for a in expr.args]
        kwargs = {}
        for kw in expr.kwargs:
            if kw.name in kwargs:
                raise DlcError(f"argument '{kw.name}' given twice", kw.span)
            kwargs[kw.name] = (self.elab.eval(kw.value, frame), kw.span)
        return self.bind(fn, args, kwargs, expr.span)

    def bind(self, fn: Fn, args: list, kwargs: dict, span: Span) -> FnCall:
        """A call's arguments by parameter, checked, with the defaults filled in."""
        if len(args) > len(fn.params):
            raise DlcError(
                f"{fn.name}() takes at most {len(fn.params)} positional arguments, got {len(args)}",
                args[len(fn.params)][1],
            )
        given = {p.name: a for p, a in zip(fn.params, args)}
        extra: dict[str, str] = {}
        known = {p.name for p in fn.params}
        for name, (v, s) in kwargs.items():
            if name in given:
                raise DlcError(f"{fn.name}(): argument '{name}' given twice", s)
            if name in known:
                given[name] = (v, s)
            elif fn.extra is not None:
                if not isinstance(v, str):
                    raise DlcError(
                        f"{fn.name}({name}=…): expected the name of an array, got {describe(v)}",
                        s,
                    )
                extra[name] = v
            else:
                raise DlcError(
                    f"{fn.name}() has no argument '{name}'"
                    + (suggest(name, known) or f" (arguments: {', '.join(known) or 'none'})"),
                    s,
                )
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        for p in fn.params:
            if p.name not in given:
                if p.default is REQUIRED:
                    raise DlcError(f"{fn.name}() needs the argument '{p.name}'", span)
                values[p.name] = p.default
                continue
            v, s = given[p.name]
            if v is POISON:
                continue
            try:
                values[p.name] = p.check(v)
            except Bad as bad:
                raise DlcError(schema.bad_value(fn.name, p.name, str(bad), v), s) from None
            spans[p.name] = s
        if fn.extra is not None:
            values[fn.extra] = extra
        return FnCall(fn.name, values, span, spans)

    def model(self, expr, frame: Frame) -> ModelRef:
        name = expr.func if isinstance(expr, ast.Call) else expr
        if not isinstance(name, ast.Name) or name.id not in self.program.networks:
            nets = self.program.networks
            got = (
                f"'{name.id}'" + suggest(name.id, nets)
                if isinstance(name, ast.Name)
                else describe(self.elab.eval(expr, frame))
            )
            raise DlcError(
                f"model is a network of this file or its imports ({', '.join(nets) or 'none'}), "
                f"got {got}",
                name.span,
            )
        net = self.program.networks[name.id]
        args: dict[str, Any] = {}
        if isinstance(expr, ast.Call):
            if len(expr.args) > len(net.params):
                raise DlcError(
                    f"network {net.name} takes {len(net.params)} parameters, got {len(expr.args)}",
                    expr.span,
                )
            for p, a in zip(net.params, expr.args):
                args[p.name] = self.elab.eval(a, frame)
            for kw in expr.kwargs:
                if kw.name in args:
                    raise DlcError(f"argument '{kw.name}' given twice", kw.span)
                args[kw.name] = self.elab.eval(kw.value, frame)
        return ModelRef(net.name, args, expr.span)

    def losses(self, expr, frame: Frame) -> list[tuple[float, FnCall]]:
        """A loss or a weighted sum: ``cross_entropy + 0.3 * cross_entropy(output="aux")``."""
        if isinstance(expr, ast.BinOp) and expr.op == "+":
            return self.losses(expr.left, frame) + self.losses(expr.right, frame)
        if isinstance(expr, ast.BinOp) and expr.op == "*":
            left_is_loss = self._loss_syntax(expr.left, frame)
            loss, weight = (expr.left, expr.right) if left_is_loss else (expr.right, expr.left)
            w = self.elab.eval(weight, frame)
            if isinstance(w, bool) or not isinstance(w, (int, float)) or w <= 0:
                raise DlcError(
                    f"a loss's weight must be a number > 0, got {describe(w)}", weight.span
                )
            return [(float(w) * x, term) for x, term in self.losses(loss, frame)]
        if isinstance(expr, ast.BinOp):
            raise DlcError(
                f"losses combine with + and a weight (`a + 0.3 * b`), not '{expr.op}'", expr.span
            )
        return [(1.0, self.fn_call(expr, "loss", frame))]

    def _loss_syntax(self, expr, frame: Frame) -> bool:
        if isinstance(expr, ast.BinOp):
            return expr.op in "+*"
        return self._named(expr, "loss", frame)

    # -- checks across keys
    def cross_check(self, r: Recipe) -> None:
        logged = r.logged()
        for call in (r.early_stop, r.schedule):
            if call is None or "monitor" not in call.args:
                continue
            monitor = call.args["monitor"]
            if monitor not in logged:
                why = (
                    " (the recipe has no val split)"
                    if monitor.startswith("val.") and r.val is None
                    else ""
                )
                self.error(
                    DlcError(
                        f'{call.name}(monitor="{monitor}"): the recipe logs no such metric{why}'
                        + suggest(monitor, logged)
                        + f" (it logs {', '.join(logged)})",
                        call.where("monitor"),
                    )
                )
        opt = r.optimizer
        if opt.name == "sgd" and opt.args["nesterov"]:
            if opt.args["momentum"] <= 0 or opt.args["dampening"] != 0:
                self.error(
                    DlcError(
                        "sgd(nesterov=true) needs momentum > 0 and dampening = 0",
                        opt.where("nesterov"),
                    )
                )
        for a in r.augment:
            if a.name == "color_jitter" and a.args["hue"] > 0.5:
                self.error(
                    DlcError("color_jitter(hue=…) is at most 0.5 (half a turn)", a.where("hue"))
                )
        if r.val is not None and r.test is not None and not isinstance(r.val, FnCall):
            if isinstance(r.test, float) and r.val + r.test >= 1:
                self.error(DlcError("val and test leave no training data", r.where("test")))


def elaborate_recipe(
    program: Program, name: str, overrides: Mapping[str, Any] | None = None
) -> Recipe:
    """The recipe ``name`` of a loaded program, elaborated and checked (raises DlcError)."""
    return _RecipeElaborator(program).recipe(program.recipes[name], overrides or {})


def load_recipe(
    program: Program, name: str | None, overrides: Mapping[str, Any] | None = None
) -> tuple[Recipe, Any]:
    """A recipe of ``program`` elaborated, with its network compiled and checked against it."""
    from ..network import _compile

    r = elaborate_recipe(program, select(program, "train", name), overrides)
    net = _compile(program, r.model.network, None, r.model.args)
    check_against_network(r, net)
    return r, net


def data_source(program: Program, recipe: str | None, text: str) -> FnCall:
    """``--data``: a source expression (``npz("x.npz", target = "y")``), or a path read as
    the recipe's own data is (a folder: images); paths relative to the working folder."""
    from ..frontend.parser import parse_expr

    r = elaborate_recipe(program, select(program, "train", recipe))  # no network needed
    try:
        expr = parse_expr(text, "--data")
    except DlcError:
        expr = None
    if isinstance(expr, ast.Call):
        frame = Frame("", {}, None, (), {}, (), True)
        call = _RecipeElaborator(program).fn_call(expr, "source", frame)
    else:
        path = Path(text)
        kind = "images" if path.is_dir() else path.suffix.lstrip(".").lower()
        if kind not in FUNCTIONS["source"]:
            raise DlcError(
                f"--data {text}: not a .npz, .safetensors or .csv file or an image folder; "
                'or write a source: \'npz("file.npz", x = "images", target = "labels")\''
            )
        args = dict(r.data.args) if r.data.name == kind else {}
        args["path"] = text
        if kind == "images" and "size" not in args:
            raise DlcError(f"--data {text}: write the size: 'images(\"{text}\", size = (h, w))'")
        fn = FUNCTIONS["source"][kind]
        for p in fn.params:
            args.setdefault(p.name, r.data.args.get(p.name, p.default))
        if fn.extra:
            args.setdefault(fn.extra, r.data.args.get(fn.extra, {}))
        call = FnCall(kind, args, None)
    call.args["path"] = str(Path(call.args["path"]).resolve())
    return call


def check_against_network(recipe: Recipe, net) -> None:
    """What the recipe asks of its network: outputs that exist, class axes for class
    losses and metrics, an input that the augmentations fit. Raises DlcError."""
    errors: list[DlcError] = []
    outputs = net.outputs
    names = list(outputs)
    terms = [t for _, t in recipe.loss] + list(recipe.metrics)
    for call in terms:
        out = call.args.get("output")
        if out is not None and out not in outputs:
            errors.append(
                DlcError(
                    f"{call.name}(output=\"{out}\"): network {net.name} has no output '{out}'"
                    + suggest(out, names)
                    + f" (outputs: {', '.join(names)})",
                    call.where("output"),
                )
            )
            continue
        t = outputs[out or names[0]]
        if call.name in ("cross_entropy", "nll", "accuracy", "top_k") and t.rank < 2:
            errors.append(
                DlcError(
                    f"{call.name} needs class scores (rank ≥ 2, batch first), but the output is "
                    f"{t}",
                    call.span,
                )
            )
        elif call.name == "top_k":
            classes = class_count(t, call.args.get("axis"))
            if isinstance(classes, int) and call.args["k"] > classes:
                errors.append(
                    DlcError(f"top_k({call.args['k']}) of {classes} classes", call.where("k"))
                )
    x = next(iter(net.inputs.values()))
    for a in recipe.augment:
        least = AUGMENT_RANK[a.name]
        if not x.dtype.startswith(("float", "bfloat")):
            errors.append(DlcError(f"{a.name} augments float inputs; the input is {x}", a.span))
        elif x.rank < least:
            errors.append(
                DlcError(
                    f"{a.name} needs an input of rank ≥ {least} (batch first); the input is {x}",
                    a.span,
                )
            )
        else:
            channels = x.shape[1] if x.rank > 1 else None
            need3 = a.name == "color_jitter" and (a.args["saturation"] or a.args["hue"])
            if need3 and channels != 3:
                errors.append(
                    DlcError("color_jitter's saturation and hue need 3 channels (RGB)", a.span)
                )
            if a.name == "normalize" and isinstance(channels, int):
                for arg in ("mean", "std"):
                    if len(a.args[arg]) not in (1, channels):
                        errors.append(
                            DlcError(
                                f"normalize({arg}=…) has {len(a.args[arg])} values for "
                                f"{channels} channels",
                                a.where(arg),
                            )
                        )
    if errors:
        raise DlcError.group(errors)


def class_count(t, axis: int | None) -> int | Sym:
    """The number of classes of an output: the class axis's size (the last axis, or axis 1
    of a rank-4/5 image output, as LANGUAGE §11 says)."""
    return t.shape[class_axis(t.rank, axis)]


def class_axis(rank: int, axis: int | None) -> int:
    if axis is None:
        return 1 if rank in (4, 5) else rank - 1
    return axis % rank


__all__ = [
    "check_against_network",
    "class_axis",
    "class_count",
    "elaborate_recipe",
    "metric_name",
]
