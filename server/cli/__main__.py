"""``python -m server.cli``: the same command line as ``scorebridge``."""
from . import main

main()
