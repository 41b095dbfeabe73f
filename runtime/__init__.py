"""Runtime support the backends share: weights (initialisation, safetensors files and
checks), input validation, atomic output files. NumPy only; no backend imports here."""
