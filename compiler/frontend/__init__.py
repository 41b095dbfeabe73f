"""The front end: source text -> AST -> a program of networks, blocks, functions and
imports (program.py).

The grammar is Lark's (grammar/dl.lark) and so are the LALR tables: ``gen_tables.py`` has
Lark analyse the grammar and writes its lexer and parse tables to ``dl_tables.py`` (a test
fails when they are stale). At run time a 150-line loop (``lalr.py``) drives those tables,
and Lark itself is built only to explain a syntax error. Why not Lark's own parse loop:
it was about half of the front end's time on ResNet-50 (2.45 of 5.9 ms) and its import
and grammar analysis most of ``dlc summary``'s start-up; ``tests/test_parser_tables.py``
checks on hundreds of mutated specs that the loop accepts exactly what Lark accepts.
"""
