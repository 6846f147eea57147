"""NNL7: the hazards the tracing layer reports. Metadata only: this module never imports torch."""

from nnlint.diagnostics import Severity
from nnlint.rule import Rule


class TraceRule(Rule):
    layer = "trace"


class BroadcastExpansion(TraceRule):
    """An elementwise op broadcast its operands into a result larger than any of them.

    `(B, 1) - (B,)` is legal and gives `(B, B)`: every prediction is compared with every target and
    the loss is still a number, so the model trains on nonsense. Make the shapes agree first, e.g.
    `pred.squeeze(-1) - target` or `pred - target.unsqueeze(-1)`.
    """

    code = "NNL701"
    name = "broadcast-expansion"
    severity = Severity.ERROR


class LossShapeMismatch(TraceRule):
    """A loss received input and target of different shapes.

    Most losses broadcast (with only a warning) instead of failing, so `(B, 1)` predictions against
    `(B,)` targets silently compute a `(B, B)` loss. For cross-entropy, a `(B, 1)` class target is a
    shape error waiting to happen. Reshape the target (or the prediction) to match.
    """

    code = "NNL702"
    name = "loss-shape-mismatch"
    severity = Severity.ERROR


class SoftmaxOverSingleton(TraceRule):
    """Softmax taken along a dimension of size 1: the output is constantly 1 (log-softmax: 0).

    Usually a wrong `dim` or a missing `unsqueeze`. The layer passes no gradient at all. Apply it over
    the class dimension.
    """

    code = "NNL703"
    name = "softmax-over-singleton"
    severity = Severity.ERROR


class BatchMixing(TraceRule):
    """Samples of a batch influence each other's outputs.

    Checked by gradients: in eval mode, d out[0] / d x[1:] must be zero. A `view` used where a
    `transpose` was meant, or a reduction over the batch, breaks that and the model quietly learns
    from the wrong samples. Use `permute`/`transpose` to reorder dimensions before reshaping.
    """

    code = "NNL704"
    name = "batch-mixing"
    severity = Severity.ERROR


class BatchDimReduction(TraceRule):
    """A reduction or softmax over the batch dimension inside forward.

    Each sample's output then depends on the rest of the batch (and on the batch size). Reduce over
    the feature dimensions instead.
    """

    code = "NNL705"
    name = "batch-dim-reduction"
    severity = Severity.WARNING


class NonFiniteOutput(TraceRule):
    """NaN or Inf appeared in an activation on a standard-normal input at initialization.

    The first op that produced it is reported: typically `log` of zero, a division by zero, `sqrt` of
    a negative number or an overflowing `exp`. Add an epsilon or use the numerically stable variant.
    """

    code = "NNL706"
    name = "non-finite-output"
    severity = Severity.ERROR


class InitialLossOff(TraceRule):
    """The initial cross-entropy is far above ln(C): the classifier starts overconfident.

    With C classes and a sensible init, the loss on random labels starts near ln(C). Much higher
    means large initial logits and wasted first epochs ("hockey stick" loss). Initialize the last
    layer's weights to zero or small values, or set its bias from the class priors.
    """

    code = "NNL707"
    name = "initial-loss-off"
    severity = Severity.WARNING


class DeadOrSaturatedActivations(TraceRule):
    """At initialization most of a layer's activations are dead (ReLU zero) or saturated (tanh/sigmoid).

    Over 90% of a ReLU's outputs zero, or of a tanh/sigmoid's outputs near +-1 / 0 / 1, means almost no
    gradient flows. Check input normalization and the weight init (He for ReLU, Xavier for tanh).
    """

    code = "NNL708"
    name = "dead-or-saturated-activations"
    severity = Severity.WARNING


class VanishingOrExplodingGradients(TraceRule):
    """At initialization the first and last layers' gradient norms differ by more than 1e4x.

    Training will then barely move one end of the network or blow up the other. Use a standard
    initialization, normalization layers or residual connections.
    """

    code = "NNL709"
    name = "vanishing-or-exploding-gradients"
    severity = Severity.WARNING


class DeviceHazard(TraceRule):
    """A tensor created in forward on a fixed device instead of the input's.

    It works on the CPU and breaks (or silently copies every step) once the model moves to a GPU.
    Create it with `device=x.device`, `torch.zeros_like(x)`, or register it as a buffer.
    """

    code = "NNL710"
    name = "device-hazard"
    severity = Severity.WARNING


class MisalignedReshape(TraceRule):
    """A view/reshape regroups dimensions out of order, scrambling elements.

    A reshape is aligned when each boundary of its output is a boundary of its input or evenly splits
    one input dimension. `(B, H, W) -> (B, W, H)` or `(B, heads, T, d) -> (B, T, heads * d)` without a
    permute is not: it mixes positions (or samples). Permute first, then reshape.
    """

    code = "NNL711"
    name = "misaligned-reshape"
    severity = Severity.WARNING


class ModelNotTraced(TraceRule):
    """A model in the checked files could not be built or traced; the message says why.

    Usually the constructor needs arguments nnlint cannot guess, or the input shape is unknown. Add
    them to `pyproject.toml`, e.g. `[tool.nnlint.models."Net"]` with `args = [784, 10]` and
    `input = "float32[B,784]"`.
    """

    code = "NNL790"
    name = "model-not-traced"
    severity = Severity.INFO
