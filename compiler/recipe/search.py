"""Elaborating a ``search`` section (LANGUAGE §12): the recipe it tunes, a space (or a
fixed value) per recipe parameter, the objective, the sampler, the pruner and the budgets,
each checked against the recipe with located errors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..elaborate.elaborator import Elaborator
from ..elaborate.frame import Frame
from ..elaborate.values import POISON, describe, suggest
from ..errors import DlcError, Span
from ..frontend import ast
from ..frontend.program import Program, select
from .elaborate import elaborate_recipe
from .schema import KEYS, Bad, count, natural

SPACES = ("choice", "uniform", "loguniform", "int_uniform")
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "hyperband")
SETTINGS = ("recipe", "objective", "trials", "sampler", "pruner", "max_params", "max_macs", "seed")


@dataclass(frozen=True, eq=False)
class Space:
    """``choice(8, 16)``, ``uniform(a, b)``, ``loguniform(a, b)``, ``int_uniform(a, b,
    step)``: ``values`` are the choices, or (low, high[, step])."""

    kind: str
    values: tuple
    span: Span | None = None

    def to_json(self) -> dict:
        return {"space": self.kind, "values": list(self.values)}


@dataclass(eq=False)
class Search:
    name: str
    recipe: str
    spaces: dict[str, Space]
    fixed: dict[str, Any]  # recipe parameters (or plain keys) the search sets
    direction: str  # "maximize" | "minimize"
    metric: str
    trials: int
    sampler: str = "tpe"
    pruner: str = "none"
    max_params: int | None = None
    max_macs: int | None = None
    seed: int = 0
    span: Span | None = None
    spans: dict[str, Span] = field(default_factory=dict)

    def grid(self) -> list[dict[str, Any]]:
        """Every point of a grid search (choice spaces only), in a fixed order."""
        points: list[dict[str, Any]] = [{}]
        for name, space in self.spaces.items():
            points = [{**p, name: v} for p in points for v in space.values]
        return points

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "recipe": self.recipe,
            "spaces": {k: s.to_json() for k, s in self.spaces.items()},
            "fixed": self.fixed,
            "objective": {"direction": self.direction, "metric": self.metric},
            "trials": self.trials,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "max_params": self.max_params,
            "max_macs": self.max_macs,
            "seed": self.seed,
        }


def _name_span(stmt: ast.Assign) -> Span:
    s = stmt.span
    return Span(s.source, s.line, s.col, s.line, s.col + len(stmt.name))


class _SearchElaborator:
    def __init__(self, program: Program):
        self.program = program
        self.elab = Elaborator(program)
        self.frame = Frame("", {}, None, (), {}, (), True)
        self.errors: list[DlcError] = []

    def run(self, d: ast.SearchDef) -> Search:
        assigns: dict[str, ast.Assign] = {}
        for stmt in d.body:
            if isinstance(stmt, ast.Assign):
                assigns[stmt.name] = stmt
            elif isinstance(stmt, ast.Let):
                self.frame.env[stmt.name] = self.elab.eval(stmt.value, self.frame)
            else:
                self.errors.append(
                    DlcError("a search section holds `name = value` and `let` only", stmt.span)
                )
        recipe_name, recipe_args = self.recipe(assigns.get("recipe"), d)
        params = (
            {p.name for p in self.program.recipes[recipe_name].params} if recipe_name else set()
        )
        settable = params | {k for k, (kind, _) in KEYS.items() if not isinstance(kind, str)}
        spaces: dict[str, Space] = {}
        fixed: dict[str, Any] = dict(recipe_args)
        for name, stmt in assigns.items():
            if name in SETTINGS or recipe_name is None:
                continue
            if name not in settable:
                self.errors.append(
                    DlcError(
                        f"recipe {recipe_name} has no parameter '{name}'"
                        + (
                            suggest(name, settable) or f" (parameters: {', '.join(sorted(params))})"
                        ),
                        _name_span(stmt),
                    )
                )
                continue
            try:
                value = self.space_or_value(stmt.value)
            except DlcError as err:
                self.errors.append(err)
                continue
            (spaces if isinstance(value, Space) else fixed)[name] = value
        settings = {k: self.setting(k, assigns[k]) for k in SETTINGS[1:] if k in assigns}
        if "objective" not in assigns:
            self.errors.append(
                DlcError(f'search {d.name} sets no `objective` (maximize("val.accuracy"))', d.span)
            )
        if not spaces:
            self.errors.append(DlcError(f"search {d.name} has no space to search", d.span))
        if self.errors or recipe_name is None:
            raise DlcError.group(self.errors)
        direction, metric = settings["objective"]
        search = Search(
            name=d.name, recipe=recipe_name, spaces=spaces, fixed=fixed, direction=direction,
            metric=metric, trials=settings.get("trials") or 0, span=d.span,
            spans={k: v.value.span for k, v in assigns.items()},
            **{k: settings[k] for k in ("sampler", "pruner", "max_params", "max_macs", "seed")
               if k in settings},
        )  # fmt: skip
        self.check(search)
        if self.errors:
            raise DlcError.group(self.errors)
        return search

    def recipe(self, stmt: ast.Assign | None, d: ast.SearchDef) -> tuple[str | None, dict]:
        if stmt is None:
            self.errors.append(DlcError(f"search {d.name} sets no `recipe`", d.span))
            return None, {}
        expr = stmt.value
        name = expr.func if isinstance(expr, ast.Call) else expr
        recipes = self.program.recipes
        if not isinstance(name, ast.Name) or name.id not in recipes:
            got = (
                f"'{name.id}'" + suggest(name.id, recipes) if isinstance(name, ast.Name) else "that"
            )
            self.errors.append(
                DlcError(
                    f"recipe is a train section of this file ({', '.join(recipes) or 'none'}), "
                    f"got {got}",
                    name.span,
                )
            )
            return None, {}
        args = {}
        if isinstance(expr, ast.Call):
            for kw in expr.kwargs:
                args[kw.name] = self.elab.eval(kw.value, self.frame)
            if expr.args:
                self.errors.append(
                    DlcError("recipe arguments are by name: R(lr = 0.1)", expr.args[0].span)
                )
        return name.id, args

    def space_or_value(self, expr) -> Any:
        if (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Name)
            and expr.func.id in SPACES
        ):
            kind = expr.func.id
            args = [self.elab.eval(a, self.frame) for a in expr.args]
            kwargs = {kw.name: self.elab.eval(kw.value, self.frame) for kw in expr.kwargs}
            return Space(kind, self._space_values(kind, args, kwargs, expr.span), expr.span)
        value = self.elab.eval(expr, self.frame)
        if value is POISON:
            raise DlcError("this value depends on an error above", expr.span)
        return value

    @staticmethod
    def _space_values(kind: str, args: list, kwargs: dict, span: Span) -> tuple:
        if kind == "choice":
            if kwargs or not args:
                raise DlcError("choice(a, b, ...) takes one or more values", span)
            return tuple(args)
        if kind == "int_uniform":
            unknown = set(kwargs) - {"step"}
            if len(args) != 2 or unknown:
                raise DlcError("int_uniform(low, high, step = 1)", span)
            step = kwargs.get("step", 1)
            lo, hi = args
            if any(isinstance(v, bool) or not isinstance(v, int) for v in (lo, hi, step)):
                raise DlcError(f"int_uniform takes integers, got {describe((lo, hi, step))}", span)
            if lo > hi or step < 1:
                raise DlcError(f"int_uniform({lo}, {hi}, step = {step}): an empty range", span)
            return (lo, hi, step)
        if len(args) != 2 or kwargs:
            raise DlcError(f"{kind}(low, high)", span)
        lo, hi = args
        numbers = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in (lo, hi)
        )
        if not numbers or lo >= hi or (kind == "loguniform" and lo <= 0):
            need = "0 < low < high" if kind == "loguniform" else "low < high"
            raise DlcError(f"{kind}: needs numbers with {need}, got {describe((lo, hi))}", span)
        return (float(lo), float(hi))

    def setting(self, key: str, stmt: ast.Assign) -> Any:
        expr = stmt.value
        span = expr.span
        if (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Name)
            and expr.func.id in SPACES
        ):
            what = "own seed (trial seeds derive from it)" if key == "seed" else "setting"
            self.errors.append(
                DlcError(f"`{key}` is the search's {what}, not a recipe parameter to search", span)
            )
            return None
        value = None
        try:
            if key == "objective":
                ok = (
                    isinstance(expr, ast.Call)
                    and isinstance(expr.func, ast.Name)
                    and expr.func.id in ("maximize", "minimize")
                    and len(expr.args) == 1
                    and not expr.kwargs
                )
                metric = self.elab.eval(expr.args[0], self.frame) if ok else None
                if not isinstance(metric, str):
                    raise DlcError('objective is maximize("metric") or minimize("metric")', span)
                return expr.func.id, metric
            if key in ("sampler", "pruner"):
                choices = SAMPLERS if key == "sampler" else PRUNERS
                word = "none" if isinstance(expr, ast.Lit) and expr.value is None else None
                word = expr.id if isinstance(expr, ast.Name) else word
                if word not in choices:
                    raise DlcError(
                        f"{key} is one of {', '.join(choices)}"
                        + (suggest(word, choices) if word else ""),
                        span,
                    )
                return word
            value = self.elab.eval(expr, self.frame)
            return (natural if key == "seed" else count)(value)
        except Bad as bad:
            self.errors.append(DlcError(f"{key}: expected {bad}, got {describe(value)}", span))
            return None
        except DlcError as err:
            self.errors.append(err)
            return None

    def check(self, s: Search) -> None:
        recipe = self._recipe(s, {}, s.spans.get("recipe"))
        if recipe is None:
            return
        for name, space in s.spaces.items():  # each choice the recipe must accept
            if space.kind == "choice":
                for v in space.values:
                    if self._recipe(s, {name: v}, space.span) is None:
                        break
        logged = recipe.logged()
        if s.metric not in logged:
            why = (
                " (the recipe has no val split)"
                if s.metric.startswith("val.") and recipe.val is None
                else ""
            )
            self.errors.append(
                DlcError(
                    f'objective: recipe {s.recipe} logs no metric "{s.metric}"{why}'
                    + suggest(s.metric, logged)
                    + f" (it logs {', '.join(logged)})",
                    s.spans.get("objective"),
                )
            )
        if s.sampler == "grid":
            for name, space in s.spaces.items():
                if space.kind != "choice":
                    self.errors.append(
                        DlcError(
                            f"a grid search takes choice(...) spaces; {name} is {space.kind}(...)",
                            space.span,
                        )
                    )
            if not self.errors:  # a point once: never more trials than points
                s.trials = min(s.trials or len(s.grid()), len(s.grid()))
        elif not s.trials:
            s.trials = 10

    def _recipe(self, s: Search, values: dict, span: Span | None):
        """The recipe with the search's fixed values and ``values``, or None after
        recording its error (located here when the recipe's own message has no place)."""
        try:
            return elaborate_recipe(self.program, s.recipe, {**s.fixed, **values})
        except DlcError as err:
            for e in err.errors:
                if e.span is None:
                    e = DlcError(e.message.replace("--set ", ""), span)
                self.errors.append(e)
            return None


def elaborate_search(program: Program, name: str | None) -> Search:
    """The search section ``name`` (the file's only one if None), elaborated and checked."""
    return _SearchElaborator(program).run(program.searches[select(program, "search", name)])
