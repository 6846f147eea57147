"""Static rules, one module per family. Importing this package registers them all."""

from nnlint.static import data, losses, loop, reproducibility, shapes  # noqa: F401
