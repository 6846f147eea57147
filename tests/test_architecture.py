"""Lower layers never import upper ones: checked in a fresh interpreter, where sys.modules tells the truth."""

from __future__ import annotations

import subprocess
import sys

import pytest

# module -> package prefixes it must not pull in
LOWER_LAYERS = {
    "nnlint.rule": ("nnlint.static", "nnlint.trace", "nnlint.registry"),
    "nnlint.diagnostics": ("nnlint.rule", "nnlint.static", "nnlint.trace"),
    "nnlint.trace.hazards": ("torch", "nnlint.static"),
    "nnlint.observations": ("nnlint.static", "nnlint.trace", "nnlint.layers"),  # facts are plain data
    "nnlint.trace.runner": ("torch", "nnlint.check", "nnlint.layers"),
}


@pytest.mark.parametrize("module, forbidden", LOWER_LAYERS.items())
def test_module_imports_no_upper_layer(module, forbidden):
    probe = (f"import sys, {module}; bad = sorted(m for m in sys.modules if m.startswith({forbidden!r})); "
             "print(' '.join(bad)); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, f"{module} imports {done.stdout.strip() or done.stderr}"
