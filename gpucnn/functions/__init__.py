"""The ops, one module per family. Each op is a :class:`gpucnn.function.Function` subclass with its
NumPy path, its CUDA kernel launch and its backward side by side, plus the user-facing function that
validates arguments (see :mod:`gpucnn.functional` for the public list)."""
