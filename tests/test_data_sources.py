"""Data sources of training recipes (dlc.training.data): npz, safetensors, csv and image
folders read and checked against the network's inputs; split by a seed. Every file is
written here, so each check compares with arrays the test knows."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from dlc.compiler.errors import DlcError, Source, Span
from dlc.training.data import Dataset, InputSpec, load, split

SPAN = Span(Source("recipe.dl", 'data = npz("d.npz")'), 1, 8, 1, 20)

IMAGES = InputSpec("x", "float32", (None, 1, 4, 4))
LABELS = np.array([0, 1, 2, 1, 0], np.int64)
PIXELS = np.arange(5 * 16, dtype=np.uint8).reshape(5, 1, 4, 4)


def fails(*needles: str, kind: str, args: dict, base, inputs) -> DlcError:
    """load(...) raises a DlcError at SPAN whose message holds every needle."""
    with pytest.raises(DlcError) as info:
        load(kind, args, base, inputs, SPAN)
    err = info.value
    assert err.span is SPAN
    for needle in needles:
        assert needle in err.message, (needle, err.message)
    return err


def write(kind: str, path, arrays: dict[str, np.ndarray]) -> None:
    if kind == "npz":
        np.savez(path, **arrays)
    else:
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))


# --- npz and safetensors --------------------------------------------------------------------


@pytest.fixture(params=["npz", "safetensors"])
def named(request, tmp_path):
    """(kind, a writer of a file of that kind returning its name)."""
    kind = request.param

    def make(**arrays) -> str:
        name = f"d.{kind}"
        write(kind, tmp_path / name, arrays)
        return name

    return kind, make


def test_named_arrays_round_trip_and_cast(named, tmp_path):
    kind, make = named
    path = make(x=PIXELS, labels=LABELS, extra=np.zeros(3))
    data = load(kind, {"path": path, "target": "labels"}, tmp_path, [IMAGES], SPAN)
    assert isinstance(data, Dataset) and len(data) == 5 and data.classes is None
    assert data.inputs["x"].dtype == np.float32  # uint8 pixels cast to the float32 input
    np.testing.assert_array_equal(data.inputs["x"], PIXELS.astype(np.float32))
    np.testing.assert_array_equal(data.target, LABELS)
    assert data.target.dtype == np.int64  # the target as the file holds it


def test_named_arrays_mapped_and_by_name(named, tmp_path):
    kind, make = named
    tokens = np.array([[1, 2, 3], [4, 5, 6]], np.int32)
    scale = np.array([[0.5], [2.0]], np.float64)
    path = make(ids=tokens, scale=scale)
    inputs = [InputSpec("tokens", "int64", (None, 3)), InputSpec("scale", "bfloat16", (None, 1))]
    args = {"path": path, "target": None, "arrays": {"tokens": "ids"}}
    data = load(kind, args, tmp_path, inputs, SPAN)
    assert data.target is None and len(data) == 2
    assert data.inputs["tokens"].dtype == np.int64
    np.testing.assert_array_equal(data.inputs["tokens"], tokens)
    assert data.inputs["scale"].dtype == np.float32  # NumPy has no bfloat16
    np.testing.assert_array_equal(data.inputs["scale"], scale.astype(np.float32))


def test_missing_array_lists_names_and_suggests(named, tmp_path):
    kind, make = named
    path = make(images=PIXELS, labels=LABELS)
    err = fails(
        "no array 'x' for input x", "images", "labels",
        kind=kind, args={"path": path}, base=tmp_path, inputs=[IMAGES],
    )  # fmt: skip
    fails(
        "no array 'label' for the target", "did you mean 'labels'?",
        kind=kind, args={"path": path, "target": "label", "arrays": {"x": "images"}},
        base=tmp_path, inputs=[IMAGES],
    )  # fmt: skip
    assert "did you mean" not in err.message  # 'x' is close to nothing
    fails(
        "arrays maps 'y'", "no input 'y'; it has x",
        kind=kind, args={"path": path, "arrays": {"y": "images"}}, base=tmp_path, inputs=[IMAGES],
    )  # fmt: skip


def test_float_array_for_an_integer_input(named, tmp_path):
    kind, make = named
    path = make(tokens=np.ones((2, 3), np.float32))
    fails(
        "input tokens expects int64", "holds float32",
        kind=kind, args={"path": path}, base=tmp_path,
        inputs=[InputSpec("tokens", "int64", (None, 3))],
    )  # fmt: skip


def test_rank_and_static_dims(named, tmp_path):
    kind, make = named
    path = make(x=np.zeros((5, 4, 4), np.float32))
    fails("rank 4", "rank 3", kind=kind, args={"path": path}, base=tmp_path, inputs=[IMAGES])
    path = make(x=np.zeros((5, 1, 4, 5), np.float32))
    fails(
        "input x expects size 4 on axis 3", "has 5",
        kind=kind, args={"path": path}, base=tmp_path, inputs=[IMAGES],
    )  # fmt: skip


def test_example_counts_disagree(named, tmp_path):
    kind, make = named
    path = make(x=PIXELS, labels=LABELS[:4])
    fails(
        "different numbers of examples", "array 'x' (input x) has 5", "'labels' has 4",
        kind=kind, args={"path": path, "target": "labels"}, base=tmp_path, inputs=[IMAGES],
    )  # fmt: skip
    path = make(x=np.zeros((0, 1, 4, 4), np.float32))
    fails("no examples", kind=kind, args={"path": path}, base=tmp_path, inputs=[IMAGES])


@pytest.mark.parametrize("kind", ["npz", "safetensors"])
def test_unreadable_files(kind, tmp_path):
    (tmp_path / "junk").write_bytes(np.random.default_rng(0).bytes(300))
    fails("cannot read", "junk", kind=kind, args={"path": "junk"}, base=tmp_path, inputs=[IMAGES])
    fails("no such file", kind=kind, args={"path": "nope"}, base=tmp_path, inputs=[IMAGES])
    fails("is a folder", kind=kind, args={"path": "."}, base=tmp_path, inputs=[IMAGES])


def test_npz_object_array_is_never_unpickled(tmp_path):
    np.savez(tmp_path / "o.npz", x=np.array([{"a": 1}, None], dtype=object))
    inputs = [InputSpec("x", "float32", (None,))]
    fails("Python objects", kind="npz", args={"path": "o.npz"}, base=tmp_path, inputs=inputs)


def test_damaged_npz_member(tmp_path):
    np.savez(tmp_path / "d.npz", x=PIXELS)
    data = bytearray((tmp_path / "d.npz").read_bytes())
    data[100:140] = bytes(40)  # inside the member's data: the zip CRC check fails
    (tmp_path / "d.npz").write_bytes(bytes(data))
    fails(
        "cannot read array 'x'", kind="npz", args={"path": "d.npz"}, base=tmp_path, inputs=[IMAGES]
    )


# --- csv ------------------------------------------------------------------------------------


def write_csv(path, rows) -> str:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path.name


FEATURES = InputSpec("x", "float32", (None, 2))


def test_csv_values_and_target(tmp_path):
    rows = [["a", "label", "b"], ["1.5", "0", "-2"], ["3", "2", "4e1"], ["0", "1", "0.25"]]
    path = write_csv(tmp_path / "t.csv", rows)
    data = load("csv", {"path": path, "target": "label"}, tmp_path, [FEATURES], SPAN)
    np.testing.assert_array_equal(data.inputs["x"], np.float32([[1.5, -2], [3, 40], [0, 0.25]]))
    assert data.inputs["x"].dtype == np.float32
    np.testing.assert_array_equal(data.target, [0, 2, 1])
    assert data.target.dtype == np.int64
    rows = [["a", "y", "b"], ["1", "0.5", "2"]]  # a float target stays float
    path = write_csv(tmp_path / "r.csv", rows)
    data = load("csv", {"path": path, "target": "y"}, tmp_path, [FEATURES], SPAN)
    np.testing.assert_array_equal(data.target, [0.5])


def test_csv_errors(tmp_path):
    path = write_csv(tmp_path / "t.csv", [["a", "label", "b"], ["1", "0", "2"]])
    fails(
        "no target column 'labels'", "a, label, b", "did you mean 'label'?",
        kind="csv", args={"path": path, "target": "labels"}, base=tmp_path, inputs=[FEATURES],
    )  # fmt: skip
    rows = [["a", "label", "b"], ["1", "0", "2"], ["1", "0", "2"], ["1", "0", "n/a"]]
    path = write_csv(tmp_path / "bad.csv", rows)
    fails(
        "column 'b'", "line 4", "'n/a'",
        kind="csv", args={"path": path, "target": "label"}, base=tmp_path, inputs=[FEATURES],
    )  # fmt: skip
    path = write_csv(tmp_path / "h.csv", [["a", "label", "b"]])
    fails(
        "no data rows",
        kind="csv", args={"path": path, "target": "label"}, base=tmp_path, inputs=[FEATURES],
    )  # fmt: skip
    (tmp_path / "e.csv").write_text("")
    fails("empty", kind="csv", args={"path": "e.csv"}, base=tmp_path, inputs=[FEATURES])
    two = [FEATURES, InputSpec("z", "float32", (None, 2))]
    fails("one input", kind="csv", args={"path": "t.csv"}, base=tmp_path, inputs=two)
    fails("rank-2", kind="csv", args={"path": "t.csv"}, base=tmp_path, inputs=[IMAGES])
    fails(  # three feature columns for an input of two
        "axis 1",
        kind="csv", args={"path": "t.csv", "target": None}, base=tmp_path, inputs=[FEATURES],
    )  # fmt: skip


# --- images ---------------------------------------------------------------------------------

COLOURS = {"cat": [(255, 0, 0), (10, 20, 30)], "ant": [(0, 128, 255)], "bee": [(7, 7, 7)]}


@pytest.fixture
def folder(tmp_path):
    from PIL import Image

    root = tmp_path / "pics"
    for name, colours in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i, colour in enumerate(colours):
            Image.new("RGB", (5 + i, 7), colour).save(root / name / f"{i}.PNG")
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


def test_images_rgb(folder, tmp_path):
    inputs = [InputSpec("x", "float32", (None, 3, 4, 3))]
    data = load("images", {"path": "pics", "size": (4, 3)}, tmp_path, inputs, SPAN)
    assert data.classes == ["ant", "bee", "cat"]
    np.testing.assert_array_equal(data.target, [0, 1, 2, 2])
    x = data.inputs["x"]
    assert x.shape == (4, 3, 4, 3) and x.dtype == np.float32
    colours = [c for name in sorted(COLOURS) for c in COLOURS[name]]
    for image, colour in zip(x, colours):  # solid colours survive resizing exactly
        want = np.float32(colour)[:, None, None] / 255
        np.testing.assert_array_equal(image, np.broadcast_to(want, image.shape))


def test_images_grayscale(folder, tmp_path):
    inputs = [InputSpec("x", "float32", (None, 1, 2, 2))]
    data = load("images", {"path": "pics", "size": (2, 2)}, tmp_path, inputs, SPAN)
    assert data.inputs["x"].shape == (4, 1, 2, 2)
    # Pillow's "L": (299 R + 587 G + 114 B) / 1000, rounded
    r, g, b = COLOURS["ant"][0]
    grey = (r * 299 + g * 587 + b * 114 + 500) // 1000
    np.testing.assert_array_equal(data.inputs["x"][0], np.full((1, 2, 2), np.float32(grey) / 255))


def test_images_errors(folder, tmp_path):
    inputs = [InputSpec("x", "float32", (None, 3, 4, 4))]
    args = {"path": "pics", "size": (4, 4)}
    (folder / "bee" / "broken.png").write_bytes(b"not a png at all")
    fails("cannot read image", "broken.png", kind="images", args=args, base=tmp_path, inputs=inputs)
    fails(
        "expects size 4 on axis 2", "has 5",
        kind="images", args={"path": "pics", "size": (5, 4)}, base=tmp_path, inputs=inputs,
    )  # fmt: skip
    (tmp_path / "flat").mkdir()
    fails(
        "no class subfolders",
        kind="images", args={"path": "flat", "size": (4, 4)}, base=tmp_path, inputs=inputs,
    )  # fmt: skip
    (tmp_path / "flat" / "dog").mkdir()
    fails(
        "has no images",
        kind="images", args={"path": "flat", "size": (4, 4)}, base=tmp_path, inputs=inputs,
    )  # fmt: skip
    four = [InputSpec("x", "float32", (None, 4, 4, 4))]
    fails("1 (grayscale) or 3 (RGB)", kind="images", args=args, base=tmp_path, inputs=four)


# --- subset and split -----------------------------------------------------------------------


def test_subset():
    data = Dataset({"x": np.arange(10).reshape(5, 2)}, np.arange(5) * 10, ["a"])
    part = data.subset(np.array([4, 0]))
    np.testing.assert_array_equal(part.inputs["x"], [[8, 9], [0, 1]])
    np.testing.assert_array_equal(part.target, [40, 0])
    assert len(part) == 2 and part.classes == ["a"]


def test_split():
    parts = split(20, [0.1, 0.25], seed=3)
    assert [len(p) for p in parts] == [2, 5, 13]
    assert sorted(np.concatenate(parts).tolist()) == list(range(20))  # disjoint, covering
    again = split(20, [0.1, 0.25], seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = split(20, [0.1, 0.25], seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other))
    assert [len(p) for p in split(4, [0.1], seed=0)] == [1, 3]  # a fraction > 0 holds one out
    assert [len(p) for p in split(4, [0.0], seed=0)] == [0, 4]
    assert [len(p) for p in split(4, [], seed=0)] == [4]


@pytest.mark.parametrize(
    "n, fractions, needle",
    [(10, [0.5, 0.5], "none for training"), (1, [0.1], "none for training"),
     (10, [1.0], "below 1"), (10, [-0.1], "at least 0"), (0, [], "none for training")],
)  # fmt: skip
def test_split_errors(n, fractions, needle):
    with pytest.raises(ValueError, match=needle):
        split(n, fractions, seed=0)
