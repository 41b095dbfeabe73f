"""Memory, MAC and receptive-field conventions, against hand-worked figures."""

from dlc.compiler import load_source


def test_activation_memory_and_peak_by_hand():
    net = load_source("""
network Net() {
  input x: float32[N, 100]
  h = dense(200)
  y = dense(50)
  z = concat(h, y, axis=1)
}""")
    c = net.counts
    # per example: x 400 B, h 800 B, y 200 B, z 1000 B
    assert c.activation_bytes == 400 + 800 + 200 + 1000
    # live sets: {x,h} 1200 -> x dies; {h,y} 1000; {h,y,z} 2000 -> h, y die; {z} 1000
    assert c.peak_activation_bytes == 2000
    assert c.weight_bytes == 4 * (100 * 200 + 200 + 200 * 50 + 50)
    assert c.macs == 100 * 200 + 200 * 50


def test_symbolic_peak_stays_a_formula():
    net = load_source("network Net() { input x: float32[N, 8, T]; conv1d(16, 3, padding=1) }")
    assert str(net.counts.peak_activation_bytes) == "96*T"  # (8 + 16) channels * 4 B
    assert str(net.macs) == f"{16 * 8 * 3}*T"


def test_receptive_field_of_a_dilated_causal_stack():
    net = load_source("""
network Net() {
  input x: float32[N, 1, L]
  for i in range(4) { conv1d(4, 2, dilation=2 ** i, causal=true) }
  maxpool1d(2)
  conv1d(4, 3)
}""")
    # 1 + (1 + 2 + 4 + 8) = 16 after the causal stack; the pool adds 1; the stride-2
    # pool doubles the jump, so the last kernel of 3 adds 2 * 2
    assert net.counts.receptive_field == 16 + 1 + 4
