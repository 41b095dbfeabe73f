"""`python -m dlc`: the command line (as `torchrun ... -m dlc train ...` runs it)."""

from dlc.compiler.cli import main

raise SystemExit(main())
