"""`dlc plot`: learning curves from a run directory's metrics.csv."""

import math
import sys
import xml.etree.ElementTree as ET

import pytest

from dlc.compiler.errors import DlcError
from dlc.training.plot import plot, read_metrics

pytest.importorskip("matplotlib")

METRICS = """\
epoch,train.loss,val.loss,train.accuracy,val.accuracy,val.top_3,lr,time
1,2.30,2.10,0.20,0.25,0.50,0.1,1.5
2,1.50,1.60,0.55,0.50,0.80,0.01,1.4
3,0.90,1.20,0.75,0.65,0.90,0.001,1.4
"""


@pytest.fixture
def run(tmp_path):
    (tmp_path / "metrics.csv").write_text(METRICS)
    return tmp_path


def test_svg_has_one_axes_per_metric_and_lr(run):
    out = plot(run, run / "curves.svg")
    svg = out.read_text()
    ET.fromstring(svg)  # well-formed XML
    assert svg.count('<g id="axes_') == 4  # loss, accuracy, top_3, lr
    # Text is drawn as glyph paths, each string named in a comment beside them.
    assert "<!-- val -->" in svg and "<!-- train -->" in svg


def test_same_metrics_same_bytes(run):
    first = plot(run, run / "a.svg").read_bytes()
    second = plot(run, run / "b.svg").read_bytes()
    assert first == second


def test_png(run):
    assert plot(run, run / "curves.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_empty_cells(tmp_path):
    (tmp_path / "metrics.csv").write_text(
        "epoch,train.loss,val.loss,lr\n1,2.0,,0.1\n2,1.5,1.7,\n3,1.0,,0.1\n"
    )
    metrics = read_metrics(tmp_path)
    assert metrics["epoch"] == [1.0, 2.0, 3.0]
    assert math.isnan(metrics["val.loss"][0]) and metrics["val.loss"][1] == 1.7
    svg = plot(tmp_path, tmp_path / "curves.svg").read_text()
    assert svg.count('<g id="axes_') == 2


def test_missing_file(tmp_path):
    with pytest.raises(DlcError, match="metrics.csv") as err:
        plot(tmp_path, tmp_path / "curves.svg")
    assert str(tmp_path) in str(err.value)


@pytest.mark.parametrize("text", ["", "\n", "epoch,train.loss\n", "step,loss\n1,2\n", "epoch\nx\n"])
def test_empty_or_malformed_file(tmp_path, text):
    (tmp_path / "metrics.csv").write_text(text)
    with pytest.raises(DlcError) as err:
        read_metrics(tmp_path)
    assert str(tmp_path / "metrics.csv") in str(err.value)


def test_ragged_row(tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch,train.loss\n1,2.0,3.0\n")
    with pytest.raises(DlcError, match=r"metrics\.csv:2: 3 cells"):
        read_metrics(tmp_path)


def test_matplotlib_missing(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(DlcError, match="pip install matplotlib"):
        plot(run, run / "curves.svg")


@pytest.mark.parametrize("name", ["curves.jpg", "curves"])
def test_bad_suffix(run, name):
    with pytest.raises(DlcError) as err:
        plot(run, run / name)
    message = str(err.value)
    assert str(run / name) in message and ".svg" in message and ".pdf" in message
    assert not (run / name).exists()
