"""The ``gpucnn`` command-line interface (``cli.main:main`` is the console script)."""
