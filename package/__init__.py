"""dlc: a compiler for declarative neural-network specifications (.dl).

The subpackages: ``dlc.compiler`` (front end, IR, ``load``), ``dlc.backends`` (NumPy,
PyTorch, ONNX), ``dlc.runtime`` (weights, inputs, files). This module stays import-free:
every ``import dlc.x`` runs it.
"""

# The one place the version is written: pyproject.toml reads it (setuptools dynamic).
__version__ = "0.1.0"
