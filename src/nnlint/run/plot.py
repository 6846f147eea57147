"""`nnlint run --plot PATH`: one PNG with the loss curve, per-layer gradient norms and activation statistics.

matplotlib is an optional extra (`pip install 'nnlint[plot]'`); without it the command says so and goes on.
"""

from __future__ import annotations

MAX_LINES = 8


def write_plot(series: dict, path: str) -> str | None:
    """Writes the figure; returns a one-line problem instead when it cannot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "--plot needs matplotlib: pip install 'nnlint[plot]'"
    if not series.get("loss"):
        return "--plot: no optimizer step was recorded, nothing to draw"
    figure, (loss_axis, grad_axis, act_axis) = plt.subplots(1, 3, figsize=(15, 4))
    loss_axis.plot(range(1, len(series["loss"]) + 1), series["loss"], marker=".")
    loss_axis.set(title="training loss", xlabel="step")
    for name, norms in list(series.get("grad_norm", {}).items())[:MAX_LINES]:
        grad_axis.plot(range(1, len(norms) + 1), norms, label=name)
    grad_axis.set(title="gradient norm per layer", xlabel="step", yscale="log")
    for name, samples in list(series.get("activations", {}).items())[:MAX_LINES]:
        act_axis.plot([s[0] for s in samples], [s[2] for s in samples], marker="o", label=name)
    act_axis.set(title="activation std per layer", xlabel="step")
    for axis in (grad_axis, act_axis):
        if axis.lines:
            axis.legend(fontsize="x-small")
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=100)
    except OSError as exc:
        return f"--plot: cannot write {path}: {exc.strerror or exc}"
    finally:
        plt.close(figure)
    return None
