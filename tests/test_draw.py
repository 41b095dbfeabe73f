"""`dlc draw`: SVG (our own layout), DOT and HTML diagrams, checked against the IR and the
spec text rather than against the drawing code's own bookkeeping."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import pydot
import pytest

from dlc.compiler import load, load_source
from dlc.compiler.cli import main
from dlc.compiler.errors import DlcError
from dlc.diagram import notebook_html, render

SPECS = Path(__file__).resolve().parent.parent / "specs"
SVG = "{http://www.w3.org/2000/svg}"
DRAWN = ["lenet5", "resnet18", "unet", "gru_seq2seq", "tiny_transformer", "resnet50"]


# pydot parses with pyparsing, which warns of its own renamed methods.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@cache
def net(name: str):
    return load(str(SPECS / f"{name}.dl"))


@cache
def parsed_dot(name: str):
    (graph,) = pydot.graph_from_dot_data(render(net(name), "dot"))
    return graph


def ir_edges(n) -> set[tuple[str, str]]:
    return {(i, node.name) for node in n.graph.nodes for i in node.inputs}


def svg_nodes(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if "node" in g.get("class", "").split()]


def svg_edges(root: ET.Element) -> list[ET.Element]:
    return [p for p in root.iter(f"{SVG}path") if p.get("class") == "edge"]


def box(g: ET.Element) -> tuple[float, float, float, float]:
    r = g.find(f"{SVG}rect")
    return (float(r.get("x")), float(r.get("y")), float(r.get("width")), float(r.get("height")))


def ends(path: ET.Element) -> tuple[tuple[float, float], tuple[float, float]]:
    nums = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", path.get("d"))]
    return (nums[0], nums[1]), (nums[-2], nums[-1])


def text(g: ET.Element) -> str:
    return " ".join("".join(t.itertext()) for t in g.iter(f"{SVG}text"))


def dot_graph(graph) -> tuple[set[str], set[tuple[str, str]]]:
    nodes, edges = set(), set()

    def walk(g) -> None:
        for node in g.get_nodes():
            if node.get_name() not in ("node", "edge", "graph"):
                nodes.add(node.get_name().strip('"'))
        for e in g.get_edges():
            edges.add((e.get_source().strip('"'), e.get_destination().strip('"')))
        for sub in g.get_subgraphs():
            walk(sub)

    walk(graph)
    return nodes, edges


@pytest.mark.parametrize("name", DRAWN)
def test_full_depth_svg_has_every_layer_and_edge(name):
    n = net(name)
    root = ET.fromstring(render(n, "svg"))
    nodes = svg_nodes(root)
    assert len(nodes) == len(n.graph.nodes)
    assert {g.get("id") for g in nodes} == {node.name for node in n.graph.nodes}
    drawn = {(p.get("data-from"), p.get("data-to")) for p in svg_edges(root)}
    assert drawn == ir_edges(n)


@pytest.mark.parametrize("name", DRAWN)
def test_dot_has_the_same_nodes_and_edges(name):
    n = net(name)
    nodes, edges = dot_graph(parsed_dot(name))
    assert nodes == {node.name for node in n.graph.nodes}
    assert edges == ir_edges(n)


@pytest.mark.parametrize("name", DRAWN)
@pytest.mark.parametrize("depth", [None, 1])
def test_boxes_do_not_overlap_and_edges_run_down_between_their_nodes(name, depth):
    root = ET.fromstring(render(net(name), "svg", depth=depth))
    boxes = {g.get("id"): box(g) for g in svg_nodes(root)}
    items = list(boxes.items())
    for i, (a, (ax, ay, aw, ah)) in enumerate(items):
        for b, (bx, by, bw, bh) in items[:i]:
            apart = ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
            assert apart, f"{a} overlaps {b}"
    width, height = float(root.get("width")), float(root.get("height"))
    for p in svg_edges(root):
        (x0, y0), (x1, y1) = ends(p)
        assert y1 > y0, p.get("d")
        nums = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", p.get("d"))]
        assert all(0 <= x <= width for x in nums[::2]) and all(0 <= y <= height for y in nums[1::2])
        sx, sy, sw, sh = boxes[p.get("data-from")]
        tx, ty, tw, _ = boxes[p.get("data-to")]
        assert sx <= x0 <= sx + sw and abs(y0 - (sy + sh)) < 0.5  # leaves its source's bottom
        assert tx <= x1 <= tx + tw and abs(y1 - ty) < 0.5  # enters its target's top


def test_nodes_show_name_op_shape_and_params():
    root = ET.fromstring(render(net("resnet18"), "svg"))
    g = next(g for g in svg_nodes(root) if g.get("id") == "conv2d_0")
    # conv2d(64, 7, stride=2, padding=3, bias=false) on [N, 3, 224, 224]
    for words in ("conv2d_0", "conv2d", "[N, 64, 112, 112]", f"{64 * 3 * 7 * 7:,} params"):
        assert words in text(g)


def test_colours_follow_the_op_family():
    root = ET.fromstring(render(net("resnet18"), "svg"))
    fill: dict[str, set[str]] = {}
    for g in svg_nodes(root):
        op = g.get("id").rsplit(".", 1)[-1].rsplit("_", 1)[0]
        fill.setdefault(op, set()).add(g.find(f"{SVG}rect").get("fill"))
    assert all(len(f) == 1 for f in fill.values()), fill
    assert len(fill["conv2d"] | fill["batchnorm"] | fill["relu"] | fill["add"]) == 4


def test_clusters_are_the_block_calls():
    n = net("resnet18")
    root = ET.fromstring(render(n, "svg"))
    calls = {node.name.split(".")[0] for node in n.graph.nodes if node.chain}
    clusters = [g for g in root.iter(f"{SVG}g") if g.get("class") == "cluster"]
    assert {g.get("id") for g in clusters} == {f"cluster_{c}" for c in calls}
    assert all("basic" in text(g) for g in clusters)
    assert {s.get_name().strip('"') for s in parsed_dot("resnet18").get_subgraphs()} == {
        f"cluster_{c}" for c in calls
    }


def _folds(name: str) -> list[int]:
    """The ×N of each folded node of the depth-1 drawing."""
    root = ET.fromstring(render(net(name), "svg", depth=1))
    return [int(m) for g in svg_nodes(root) for m in re.findall(r"×(\d+)", text(g))]


def test_depth_1_closes_and_folds_resnet18():
    n = net("resnet18")
    root = ET.fromstring(render(n, "svg", depth=1))
    nodes = svg_nodes(root)
    top = [node for node in n.graph.nodes if not node.chain]
    calls = list(dict.fromkeys(node.name.split(".")[0] for node in n.graph.nodes if node.chain))
    # In the spec, each stage calls basic(c, s) then basic(c): only the first stage's two
    # calls (64 channels in, stride 1, no shortcut conv) build identical layers.
    assert len(calls) == 8
    assert len(nodes) == len(top) + len(calls) - 1 < len(n.graph.nodes)
    assert _folds("resnet18") == [2]
    folded = next(g for g in nodes if "×" in text(g))
    assert "basic" in text(folded) and "[N, 64, 56, 56]" in text(folded)


def test_depth_1_folds_resnet50_stages_as_the_spec_repeats_them():
    spec = (SPECS / "resnet50.dl").read_text()
    stages = re.search(r"for c, n, s in \[(.*)\]", spec).group(1)
    repeats = [int(n) for _, n, _ in re.findall(r"\((\d+), (\d+), (\d+)\)", stages)]
    assert repeats == [3, 4, 6, 3]
    # Each stage opens with a call that changes the width (a shortcut conv), then repeats.
    assert _folds("resnet50") == [r - 1 for r in repeats]
    n = net("resnet50")
    root = ET.fromstring(render(n, "svg", depth=1))
    top = [node for node in n.graph.nodes if not node.chain]
    assert len(svg_nodes(root)) == len(top) + 2 * len(repeats)
    # ResNet-50 at depth 1 fits a page.
    assert float(root.get("height")) <= 3000


def test_folded_params_add_up():
    n = net("resnet50")
    root = ET.fromstring(render(n, "svg", depth=1))
    total = 0
    for g in svg_nodes(root):
        m = re.search(r"([\d,]+) params", text(g))
        total += int(m.group(1).replace(",", "")) if m else 0
    assert total == 25_557_032  # the spec's published count


def test_two_inputs_and_merges():
    n = net("gru_seq2seq")
    root = ET.fromstring(render(n, "svg"))
    inputs = [g.get("id") for g in svg_nodes(root) if "input" in g.get("class").split()]
    assert inputs == ["src", "tgt"]
    into: dict[str, int] = {}
    for p in svg_edges(root):
        into[p.get("data-to")] = into.get(p.get("data-to"), 0) + 1
    concat = next(node.name for node in n.graph.nodes if node.op == "concat")
    assert into[concat] == 2 and into["ctx"] == 2


def test_html_is_standalone_with_tooltips():
    page = render(net("resnet18"), "html", depth=1)
    spec = (SPECS / "resnet18.dl").read_text().splitlines()
    line = next(i for i, t in enumerate(spec, 1) if "conv2d(64, 7" in t)
    assert f"resnet18.dl:{line}" in page
    assert "MACs: 118,013,952" in page  # 64*3*7*7 * 112*112: conv2d_0's tooltip
    assert "http" not in page
    assert not re.search(r"<(script|link|img)[^>]*(src|href)=", page)
    svg = re.search(r"<svg.*</svg>", page, re.S).group(0)
    assert len(svg_nodes(ET.fromstring(svg.replace("<svg", f'<svg xmlns="{SVG[1:-1]}"', 1))))


def test_notebook_reprs():
    n = net("tiny_transformer")
    html = notebook_html(n)
    assert "<pre" in html and "TinyTransformer" in html and "<svg" in html
    assert n._repr_html_() == html
    root = ET.fromstring(n._repr_svg_())
    assert len(svg_nodes(root)) < len(n.graph.nodes)  # depth 1: encoder layers closed


def test_text_is_escaped():
    n = load_source('network T(tag = "<&>") { input x: float32[N, 4]; dense(2) }')
    ET.fromstring(render(n, "svg"))
    (graph,) = pydot.graph_from_dot_data(render(n, "dot"))
    assert dot_graph(graph)[0] == {"x", "dense_0"}
    assert "<&>" not in render(n, "html")


def test_engine_dot_without_graphviz(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(DlcError, match="--engine dot needs Graphviz's dot program"):
        render(net("lenet5"), "svg", engine="dot")


def test_unknown_format():
    with pytest.raises(DlcError):
        render(net("lenet5"), "png")


def test_cli(tmp_path, capsys):
    out = tmp_path / "x.svg"
    assert main(["draw", str(SPECS / "lenet5.dl"), "-o", str(out)]) == 0
    assert len(svg_nodes(ET.fromstring(out.read_text()))) == 13
    assert (
        main(["draw", str(SPECS / "unet.dl"), "--depth", "1", "-o", str(tmp_path / "u.html")]) == 0
    )
    assert main(["draw", str(SPECS / "lenet5.dl"), "-o", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()


def test_deterministic():
    a = render(net("unet"), "svg")
    b = render(load(str(SPECS / "unet.dl")), "svg")
    assert a == b
    assert render(net("resnet50"), "dot", depth=1) == render(net("resnet50"), "dot", depth=1)
