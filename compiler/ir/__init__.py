"""The IR: a flat graph of typed nodes (graph.py), symbolic dims (symbolic.py) and the
initialisers a parameter may name (initializers.py)."""
