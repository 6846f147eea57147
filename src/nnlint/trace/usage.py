"""Input candidates from what the code declares besides its first layer (pure Python, no torch).

- constructor integers used as input widths: `RMSNorm(dim)`, `PositionalEncoding(d_model)` and
  graph layers built from `nn.Parameter`s get `(B, T, dim)` / `(B, dim)`; a second required input
  of a graph layer is the `(N, N)` adjacency of the N nodes (no batch: see `square_inputs`);
- recurrent models with `init_hidden(batch)` get the hidden state the code itself would pass.
"""

from __future__ import annotations

_NOT_WIDTHS = ("layer", "head", "vocab", "token", "class", "label", "seq", "len", "block", "max",
               "batch", "step", "epoch", "seed", "id", "num", "drop", "kernel", "stride", "pad", "ntoken")


def _is_count(name: str) -> bool:
    """Counts and lengths (`n_layers`, `num_heads`, `seq_len`), not widths, by the words of the name."""
    words = [w for w in name.lower().replace("-", "_").split("_") if w]
    return any(w.startswith(_NOT_WIDTHS) for w in words)


def width_hints(arguments: dict) -> list[int]:
    """Distinct constructor integers that may be an input's last dimension, in parameter order."""
    out = []
    for name, value in arguments.items():
        if (isinstance(value, int) and not isinstance(value, bool) and 2 <= value <= 8192
                and not _is_count(name) and value not in out):
            out.append(value)
    return out


def width_specs(widths: list[int], required: int) -> list[list[str]]:
    """Spec lists for a forward with `required` positional inputs, from candidate widths."""
    out = []
    for width in widths:
        out.append([f"float32[B,T,{width}]"] * max(required, 1))
        out.append([f"float32[B,{width}]"] * max(required, 1))
        if required >= 2:  # graph layers: node features and the adjacency matrix
            out.append([f"float32[B,{width}]"] + ["float32[B,B]"] * (required - 1))
    return out


def square_inputs(shapes: list[tuple[int, ...]]) -> bool:
    """Whether an input is a (B, B) matrix (adjacency, attention mask): rows are then nodes or
    positions that forward is meant to mix, so batch hazards do not apply."""
    if not shapes or not shapes[0]:
        return False
    batch = shapes[0][0]
    return any(len(s) == 2 and s[0] == s[1] == batch for s in shapes[1:])


HIDDEN_METHODS = ("init_hidden", "init_hidden_state", "initHidden")


def hidden_method(model) -> str | None:
    return next((m for m in HIDDEN_METHODS if callable(getattr(model, m, None))), None)
