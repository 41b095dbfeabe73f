"""A recipe's data sources (LANGUAGE §11) read into NumPy arrays and checked against the
network's inputs before training starts.

``load(kind, args, base, inputs, span)`` reads ``npz``, ``safetensors``, ``csv`` or an
``images`` folder; every mistake (a missing file, array or column, a damaged file, a wrong
dtype, rank, size or example count) is a ``DlcError`` located at the source's ``span``.
Nothing here unpickles (a pickle can run code) or needs torch: safetensors and Pillow are
imported only by the sources that read them. ``split`` holds out fractions by a seed.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..compiler.errors import DlcError
from ..extras import require

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

# The dtypes of array an input accepts, by the kind of the input's dtype (NumPy's kind codes:
# f float, i int, u unsigned, b bool). A float array never feeds an integer input: casting
# would silently truncate values that are not whole.
_ACCEPTS = {"f": "fiub", "i": "iub", "u": "iub", "b": "b"}

_LISTED = 20  # the most names an error message lists


@dataclass
class Dataset:
    """Examples in memory: one array per network input (batch axis first, already cast to
    the input's dtype) and the target (as the source holds it; the caller checks it against
    the loss)."""

    inputs: dict[str, np.ndarray]
    target: np.ndarray | None
    classes: list[str] | None = None  # images(): the class names in label order

    def __len__(self) -> int:
        first = next(iter(self.inputs.values()), self.target)
        return 0 if first is None else len(first)

    def subset(self, index: np.ndarray) -> Dataset:
        """The examples at ``index`` (one fancy-indexed take per array)."""
        return Dataset(
            {name: a[index] for name, a in self.inputs.items()},
            None if self.target is None else self.target[index],
            self.classes,
        )


@dataclass(frozen=True)
class InputSpec:
    """What the network expects of one input: ``shape`` includes the batch axis at 0; each
    dim is an int (static) or None (symbolic: any size)."""

    name: str
    dtype: str
    shape: tuple


@dataclass
class _Read:
    """What a reader found: arrays by input name, how messages call each (``array 'x'``,
    ``the feature columns``), and the target with its description."""

    arrays: dict[str, np.ndarray]
    what: dict[str, str]
    target: np.ndarray | None = None
    target_what: str = "the target"
    classes: list[str] | None = None


Reader = Callable[[Mapping[str, Any], Path, Sequence[InputSpec], Any], _Read]


def load(
    kind: str, args: Mapping[str, Any], base: Path, inputs: Sequence[InputSpec], span
) -> Dataset:
    """Read the source ``kind(args)`` (paths relative to ``base``, the .dl file's folder)
    and check it against ``inputs``."""
    try:
        reader = _READERS[kind]
    except KeyError:
        raise ValueError(f"unknown data source {kind!r}") from None
    read = reader(args, Path(base), inputs, span)
    return Dataset(_check(read, inputs, span), read.target, read.classes)


def split(n: int, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Index arrays for ``len(fractions)`` held-out parts of ``round(f * n)`` examples
    (at least one when ``f > 0``), then the rest (training): a permutation of ``range(n)``
    by ``seed``, the same on every run."""
    sizes = []
    for f in fractions:
        if not 0 <= f < 1:  # also catches NaN
            raise ValueError(f"a held-out fraction must be at least 0 and below 1, got {f}")
        sizes.append(max(1, round(f * n)) if f > 0 else 0)
    if sum(sizes) >= n:
        held = " + ".join(str(s) for s in sizes)
        raise ValueError(f"holding out {held} of {n} examples leaves none for training")
    perm = np.random.default_rng(seed).permutation(n)
    return np.split(perm, np.cumsum(sizes))


# --- checks -------------------------------------------------------------------------------


def _check(read: _Read, inputs: Sequence[InputSpec], span) -> dict[str, np.ndarray]:
    """The arrays cast to their inputs' dtypes, after checking rank, static dims, dtype
    and that every array (and the target) has the same, non-zero number of examples."""
    cast = {}
    for spec in inputs:
        a, what = read.arrays[spec.name], read.what[spec.name]
        _check_shape(a.shape, spec, what, span)
        cast[spec.name] = _cast(a, spec, what, span)
    counts = {f"{read.what[name]} (input {name})": len(a) for name, a in cast.items()}
    if read.target is not None:
        if read.target.ndim == 0:
            raise DlcError(f"{read.target_what} is a scalar, not one value per example", span)
        counts[read.target_what] = len(read.target)
    if len(set(counts.values())) > 1:
        found = ", ".join(f"{what} has {n}" for what, n in counts.items())
        raise DlcError(f"the arrays hold different numbers of examples: {found}", span)
    if not counts or next(iter(counts.values())) == 0:
        empty = ", ".join(counts) or "no array"
        raise DlcError(f"the data holds no examples ({empty}: 0 along axis 0)", span)
    return cast


def _check_shape(shape: tuple, spec: InputSpec, what: str, span) -> None:
    """Rank and static dims (not the batch axis) of ``shape`` against ``spec``."""
    expects = _shape_text(spec.shape)
    if len(shape) != len(spec.shape):
        raise DlcError(
            f"input {spec.name} has rank {len(spec.shape)} {expects}, but {what} has rank "
            f"{len(shape)} (shape {_shape_text(shape)})",
            span,
        )
    for axis in range(1, len(shape)):
        want = spec.shape[axis]
        if want is not None and shape[axis] is not None and shape[axis] != want:
            raise DlcError(
                f"input {spec.name} expects size {want} on axis {axis} {expects}, but {what} "
                f"has {shape[axis]} (shape {_shape_text(shape)})",
                span,
            )


def _cast(a: np.ndarray, spec: InputSpec, what: str, span) -> np.ndarray:
    """``a`` as the input's dtype, where that loses nothing but float precision."""
    # NumPy has no bfloat16: such inputs get float32 (the backend casts on the device).
    want = np.dtype("float32" if spec.dtype == "bfloat16" else spec.dtype)
    if a.dtype.kind not in _ACCEPTS.get(want.kind, ""):
        hint = ""
        if want.kind in "iu" and a.dtype.kind == "f":
            hint = f" (convert it with .astype('{want}') if its values are whole numbers)"
        raise DlcError(
            f"input {spec.name} expects {spec.dtype} values, but {what} holds {a.dtype}{hint}",
            span,
        )
    if want.kind in "iu" and a.dtype.kind in "iu" and a.size and not np.can_cast(a.dtype, want):
        info = np.iinfo(want)
        low, high = a.min(), a.max()
        if low < info.min or high > info.max:
            raise DlcError(
                f"input {spec.name} expects {spec.dtype} values, but {what} holds values from "
                f"{low} to {high}, outside its range",
                span,
            )
    return a.astype(want, copy=False)


def _shape_text(shape: tuple) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


# --- files and names ------------------------------------------------------------------------


def _file(given: str, base: Path, span) -> Path:
    """``given`` resolved against ``base``; an error unless it is a file."""
    path = base / given
    if path.is_dir():
        raise DlcError(f"{path} is a folder, not a file", span)
    if not path.exists():
        raise DlcError(f"no such file: {path}", span)
    return path


def _listing(names: Sequence[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def _not_found(message: str, key: str, available: Sequence[str], span) -> DlcError:
    """``message`` (that ``key`` is missing), then what there is and the closest name."""
    message += f"; it has {_listing(available)}"
    close = difflib.get_close_matches(key, available, n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return DlcError(message, span)


def _one_input(kind: str, inputs: Sequence[InputSpec], rank: int, layout: str, span) -> InputSpec:
    """The network's only input, of the rank that ``kind()`` produces."""
    if len(inputs) != 1:
        names = ", ".join(spec.name for spec in inputs)
        raise DlcError(
            f"{kind}() feeds a network with one input; this one has {len(inputs)} ({names})",
            span,
        )
    spec = inputs[0]
    if len(spec.shape) != rank:
        raise DlcError(
            f"{kind}() gives a rank-{rank} array {layout}, but input {spec.name} has rank "
            f"{len(spec.shape)} {_shape_text(spec.shape)}",
            span,
        )
    return spec


# --- npz and safetensors: named arrays ------------------------------------------------------


def _read_named(
    args: Mapping[str, Any],
    inputs: Sequence[InputSpec],
    path: Path,
    available: Sequence[str],
    fetch: Callable[[str], np.ndarray],
    span,
) -> _Read:
    """One array per input (by ``args["arrays"]``, else the input's name) and the target,
    each read by ``fetch`` once every name is known to exist."""
    mapping = dict(args.get("arrays") or {})
    names = [spec.name for spec in inputs]
    for name in mapping:
        if name not in names:
            message = f"arrays maps {name!r}, but the network has no input {name!r}"
            raise _not_found(message, name, names, span)
    keys = {name: mapping.get(name, name) for name in names}
    target = args.get("target")
    for name, key in keys.items():
        if key not in available:
            message = f"{path.name} has no array {key!r} for input {name}"
            raise _not_found(message, key, available, span)
    if target is not None and target not in available:
        message = f"{path.name} has no array {target!r} for the target"
        raise _not_found(message, target, available, span)
    return _Read(
        arrays={name: fetch(key) for name, key in keys.items()},
        what={name: f"array {key!r}" for name, key in keys.items()},
        target=None if target is None else fetch(target),
        target_what=f"target array {target!r}",
    )


def _load_npz(args: Mapping[str, Any], base: Path, inputs: Sequence[InputSpec], span) -> _Read:
    path = _file(args["path"], base, span)
    try:
        # allow_pickle=False: an object array is refused, never unpickled. np.load reads an
        # npz member (fully: mmap_mode does not apply to archives) only when it is indexed.
        npz = np.load(path, allow_pickle=False)
    except OSError as exc:
        raise DlcError(f"cannot read {path}: {exc.strerror or exc}", span) from None
    except Exception as exc:  # not a zip archive, or a damaged one
        with open(path, "rb") as f:
            zipped = f.read(2) == b"PK"
        why = f"a damaged archive ({exc})" if zipped else "not an npz file"
        raise DlcError(f"cannot read {path}: {why}", span) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DlcError(
            f"{path} holds one array (.npy), not named arrays: write it with np.savez", span
        )

    def fetch(key: str) -> np.ndarray:
        try:
            return npz[key]
        except ValueError as exc:
            if "pickle" in str(exc):
                raise DlcError(
                    f"array {key!r} of {path} holds Python objects, which dlc does not "
                    f"unpickle (loading a pickle can run code)",
                    span,
                ) from None
            raise DlcError(f"cannot read array {key!r} of {path}: {exc}", span) from None
        except Exception as exc:  # a damaged member: bad CRC, truncated data, ...
            raise DlcError(f"cannot read array {key!r} of {path}: {exc}", span) from None

    with npz:
        return _read_named(args, inputs, path, list(npz.files), fetch, span)


def _load_safetensors(
    args: Mapping[str, Any], base: Path, inputs: Sequence[InputSpec], span
) -> _Read:
    st = require("safetensors.numpy", "reading safetensors data")
    path = _file(args["path"], base, span)
    try:
        f = st.safe_open(str(path), "numpy")  # memory-mapped: reads only the tensors asked
    except OSError as exc:
        raise DlcError(f"cannot read {path}: {exc.strerror or exc}", span) from None
    except Exception as exc:  # safetensors raises its own error type for a bad file
        raise DlcError(
            f"cannot read {path}: not a safetensors file, or a damaged one ({exc})", span
        ) from None

    def fetch(key: str) -> np.ndarray:
        try:
            return f.get_tensor(key)
        except TypeError:  # a dtype NumPy cannot hold (bfloat16, float8, ...)
            dtype = f.get_slice(key).get_dtype()
            raise DlcError(
                f"tensor {key!r} of {path} is {dtype}, which NumPy cannot hold; save it as float32",
                span,
            ) from None
        except Exception as exc:  # the header promises more bytes than the file has
            raise DlcError(f"cannot read tensor {key!r} of {path}: {exc}", span) from None

    with f:
        return _read_named(args, inputs, path, list(f.keys()), fetch, span)


# --- csv ------------------------------------------------------------------------------------


def _load_csv(args: Mapping[str, Any], base: Path, inputs: Sequence[InputSpec], span) -> _Read:
    spec = _one_input("csv", inputs, 2, "(examples, features)", span)
    path = _file(args["path"], base, span)
    header, lines, cells = _read_table(path, span)
    target = args.get("target")
    if target is not None and target not in header:
        message = f"{path.name} has no target column {target!r}"
        raise _not_found(message, target, header, span)
    features = [j for j, name in enumerate(header) if name != target]
    if not features:
        raise DlcError(f"{path.name} has no feature columns besides the target", span)
    x = _numbers(cells, features, np.float64, header, lines, path, span)
    y, classes = None, None
    if target is not None:
        column = np.char.strip(cells[:, header.index(target)])
        y, classes = _target_column(column)
    return _Read(
        {spec.name: x},
        {spec.name: "the feature columns"},
        y,
        target_what=f"the target column {target!r}",
        classes=classes,
    )


def _target_column(column: np.ndarray) -> tuple[np.ndarray, list[str] | None]:
    """Whole numbers are class ids (int64), other numbers regression targets (float64),
    and names (``setosa``, ``cat``) classes numbered in sorted order, as images() numbers
    its folders."""
    try:
        return column.astype(np.int64), None
    except ValueError:
        pass
    try:
        return column.astype(np.float64), None
    except ValueError:
        names, ids = np.unique(column, return_inverse=True)
        return ids.astype(np.int64), [str(n) for n in names]


def _read_table(path: Path, span) -> tuple[list[str], list[int], np.ndarray]:
    """The header (names stripped of spaces), each data row's line number (the header
    is line 1) and the cells as a 2-D string array."""
    rows, lines = [], []
    try:
        # utf-8-sig: spreadsheets start their CSV files with a byte-order mark.
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for row in reader:
                if row:  # blank lines carry no row
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise DlcError(f"cannot read {path}: not a UTF-8 text file", span) from None
    except (OSError, csv.Error) as exc:
        raise DlcError(f"cannot read {path}: {exc}", span) from None
    if not rows:
        raise DlcError(f"{path.name} is empty", span)
    if len(rows) == 1:
        raise DlcError(f"{path.name} has a header but no data rows", span)
    header = [name.strip() for name in rows[0]]
    for line, row in zip(lines[1:], rows[1:]):
        if len(row) != len(header):
            raise DlcError(
                f"line {line} of {path.name} has {len(row)} values, but the header has "
                f"{len(header)} columns",
                span,
            )
    return header, lines[1:], np.array(rows[1:], dtype=str)


def _numbers(
    cells: np.ndarray,
    columns: list[int],
    dtype: type,
    header: list[str],
    lines: list[int],
    path: Path,
    span,
) -> np.ndarray:
    """``cells[:, columns]`` parsed as numbers; else an error naming the first column
    that is not numeric, and its first bad line."""
    try:
        return cells[:, columns].astype(dtype)
    except ValueError:
        pass
    for j in columns:  # the slow path, only to report the bad cell
        for i, text in enumerate(cells[:, j]):
            try:
                np.array(text).astype(dtype)
            except ValueError:
                raise DlcError(
                    f"column {header[j]!r} of {path.name} is not numeric: line {lines[i]} "
                    f"holds {str(text)!r}",
                    span,
                ) from None
    raise AssertionError("unreachable: some cell failed to parse")


# --- images ---------------------------------------------------------------------------------


def _load_images(args: Mapping[str, Any], base: Path, inputs: Sequence[InputSpec], span) -> _Read:
    spec = _one_input("images", inputs, 4, "(examples, channels, height, width)", span)
    mode = _colour_mode(spec, span)
    h, w = (int(s) for s in args["size"])
    channels = 1 if mode == "L" else 3
    # Checked before decoding: a size mismatch should not wait for a whole folder.
    _check_shape((None, channels, h, w), spec, f"the images (size = ({h}, {w}))", span)
    root = base / args["path"]
    if not root.is_dir():
        why = "is a file, not a folder" if root.exists() else "does not exist"
        raise DlcError(f"images(): the folder {root} {why}", span)
    classes, files, labels = _image_files(root, span)
    Image = _pillow(span)
    out = np.empty((len(files), channels, h, w), np.float32)
    for i, file in enumerate(files):
        out[i] = _decode(Image, file, mode, (h, w), span)
    return _Read(
        {spec.name: out},
        {spec.name: "the images"},
        np.array(labels, np.int64),
        target_what="the labels",
        classes=classes,
    )


def _colour_mode(spec: InputSpec, span) -> str:
    """Pillow's mode for the input's channel axis: 1 grayscale, 3 RGB."""
    c = spec.shape[1]
    if c == 1:
        return "L"
    if c in (3, None):  # a symbolic channel count takes colour images as they usually are
        return "RGB"
    raise DlcError(
        f"images() gives 1 (grayscale) or 3 (RGB) channels, but input {spec.name} expects "
        f"{c} on axis 1 {_shape_text(spec.shape)}",
        span,
    )


def _image_files(root: Path, span) -> tuple[list[str], list[Path], list[int]]:
    """Class names (sorted subfolders, as torchvision's ImageFolder), and every image file
    under them (sorted) with its class's label."""
    # Hidden entries are skipped: .git folders, macOS "._name.png" resource forks.
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DlcError(f"images(): {root} has no class subfolders (one per class)", span)
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(
            p
            for p in (root / name).rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
        )
        if not found:
            extensions = " ".join(sorted(IMAGE_EXTENSIONS))
            raise DlcError(
                f"images(): class folder {root / name} has no images ({extensions})", span
            )
        files += found
        labels += [label] * len(found)
    return classes, files, labels


def _pillow(span):
    try:
        import PIL.Image
    except ModuleNotFoundError:
        raise DlcError(
            "images() needs Pillow, which is not installed: pip install pillow", span
        ) from None
    return PIL.Image


def _bilinear(Image) -> int:
    return getattr(Image, "Resampling", Image).BILINEAR  # Image.Resampling: Pillow >= 9.1


def _decode(Image, file: Path, mode: str, size: tuple[int, int], span) -> np.ndarray:
    """One image as a float32 (C, H, W) array in [0, 1]."""
    h, w = size
    try:
        with Image.open(file) as im:
            im = im.convert(mode).resize((w, h), _bilinear(Image))
    except Exception as exc:  # Pillow raises many types for damaged files
        raise DlcError(f"cannot read image {file}: {exc}", span) from None
    a = np.asarray(im, dtype=np.float32) / 255
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


_READERS: dict[str, Reader] = {
    "npz": _load_npz,
    "safetensors": _load_safetensors,
    "csv": _load_csv,
    "images": _load_images,
}
