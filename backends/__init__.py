"""Backends that lower the dlc IR (numpy, torch, onnx)."""
