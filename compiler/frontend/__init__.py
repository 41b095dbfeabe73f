"""The front end: source text -> AST (Lark grammar, parser.py) -> a program of networks,
blocks and imports (program.py)."""
