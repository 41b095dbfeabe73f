"""Training what a spec describes (LANGUAGE §11): ``train`` recipes run on the PyTorch
backend's modules. ``fit`` is the Python face of ``dlc train``."""
