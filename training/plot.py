"""``dlc plot``: learning curves from a run directory's ``metrics.csv`` (one row per epoch:
``epoch``, then columns such as ``train.loss``, ``val.accuracy``, ``lr``, ``time``), drawn
with matplotlib, one panel per metric with its train and val lines, then one for ``lr``."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from ..compiler.errors import DlcError
from ..runtime.files import atomic_write

FORMATS = (".svg", ".png", ".pdf")
SPLITS = ("train", "val")
_FEW = 30  # at most this many points in a line: markers on each
_COLORS = {"train": "C0", "val": "C1"}  # the same colour for a split in every panel


def read_metrics(run_dir: str | Path) -> dict[str, list[float]]:
    """``metrics.csv`` of ``run_dir`` as column -> values (nan where a cell is empty)."""
    path = Path(run_dir) / "metrics.csv"
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise DlcError(f"{path}: no such file (is {run_dir} a training run directory?)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DlcError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    rows = [row for row in rows if row]  # blank lines
    if not rows:
        raise DlcError(f"{path} is empty")
    header, body = [name.strip() for name in rows[0]], rows[1:]
    if not header or header[0] != "epoch":
        raise DlcError(f"{path}: malformed header, the first column must be 'epoch'")
    if len(set(header)) != len(header) or "" in header:
        raise DlcError(f"{path}: malformed header, empty or repeated column names")
    if not body:
        raise DlcError(f"{path} has no epochs yet (a header and no rows)")
    columns: dict[str, list[float]] = {name: [] for name in header}
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DlcError(f"{path}:{line}: {len(row)} cells, the header has {len(header)}")
        for name, cell in zip(header, row):
            cell = cell.strip()
            try:
                value = float(cell) if cell else math.nan
            except ValueError:
                raise DlcError(f"{path}:{line}: {name} is not a number: {cell!r}") from None
            if name == "epoch" and math.isnan(value):
                raise DlcError(f"{path}:{line}: the epoch cell is empty")
            columns[name].append(value)
    return columns


def _panels(columns: dict[str, list[float]]) -> dict[str, dict[str, list[float]]]:
    """Metric base name -> {split: values}, loss first, then in column order; then lr."""
    panels: dict[str, dict[str, list[float]]] = {"loss": {}}
    for name, values in columns.items():
        split, _, base = name.partition(".")
        if split in SPLITS and base and any(not math.isnan(v) for v in values):
            panels.setdefault(base, {})[split] = values
    if "lr" in columns and any(not math.isnan(v) for v in columns["lr"]):
        panels["lr"] = {"lr": columns["lr"]}
    return {base: lines for base, lines in panels.items() if lines}


def plot(run_dir: str | Path, out: str | Path) -> Path:
    """Draw the learning curves of ``run_dir`` into ``out`` (.svg, .png or .pdf)."""
    out = Path(out)
    fmt = out.suffix.lower()
    if fmt not in FORMATS:
        raise DlcError(f"cannot write {out}: the format must be one of {', '.join(FORMATS)}")
    columns = read_metrics(run_dir)
    panels = _panels(columns)
    if not panels:
        raise DlcError(f"{Path(run_dir) / 'metrics.csv'} has no metric values to plot")
    try:
        import matplotlib
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise DlcError(
            "dlc plot needs matplotlib, which is not installed: pip install matplotlib"
        ) from None

    # A Figure of its own, not pyplot: no backend switch, no global figure registry; the rc
    # settings for reproducible output hold only within this call.
    with matplotlib.rc_context({"svg.hashsalt": "dlc", "svg.fonttype": "path"}):
        ncols = 2 if len(panels) == 4 else min(len(panels), 3)
        nrows = math.ceil(len(panels) / ncols)
        fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
        epochs = columns["epoch"]
        for i, (base, lines) in enumerate(panels.items()):
            ax = fig.add_subplot(nrows, ncols, i + 1)
            for label, values in lines.items():
                points = [(e, v) for e, v in zip(epochs, values) if not math.isnan(v)]
                xs, ys = zip(*points)
                marker = "o" if len(xs) <= _FEW else None
                ax.plot(xs, ys, marker=marker, ms=3, label=label, color=_COLORS.get(label, "C2"))
            if base == "lr":
                logged = [v for v in lines["lr"] if v > 0]
                if logged and max(logged) > 10 * min(logged):
                    ax.set_yscale("log")
            else:
                ax.legend()
            ax.set_title(base)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        metadata = {".svg": {"Date": None}, ".pdf": {"CreationDate": None}}.get(fmt)
        atomic_write(out, lambda tmp: fig.savefig(tmp, format=fmt[1:], metadata=metadata))
    return out
