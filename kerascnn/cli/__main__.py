"""``python -m kerascnn.cli``: the ``kerascnn`` command (as the tests and process managers
start it)."""

from kerascnn.cli import main

main()
