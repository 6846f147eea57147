"""NNL7: the hazards the tracing layer reports. Metadata only: this module never imports torch.

Each rule names its check as "module:function" under `nnlint.trace`; the analyzer (in the worker,
where torch is) runs every rule's check. An "op" check reads one recorded op, `(OpRecord, Context)
-> finding | None`; a "run" check sees the whole traced run, `(TracedRun) -> [finding]`.
"""

from __future__ import annotations

from typing import ClassVar

from nnlint.diagnostics import Severity
from nnlint.rule import Rule


class TraceRule(Rule):
    layer = "trace"
    check: ClassVar[str | None] = None  # "module:function" under nnlint.trace
    scope: ClassVar[str] = "op"  # "op": called per recorded op; "run": once per traced run
    needs_values: ClassVar[bool] = False  # skipped on fake tensors, which have no values
    on_failed_forward: ClassVar[bool] = False  # also judges the last op of a forward that raised


def trace_rules() -> dict[str, type[TraceRule]]:
    """The traced rules that have a check, in code order."""
    found: dict[str, type[TraceRule]] = {}
    pending = list(TraceRule.__subclasses__())
    while pending:
        rule = pending.pop()
        pending += rule.__subclasses__()
        if rule.check is not None and "code" in rule.__dict__:  # registered rules only
            found[rule.code] = rule
    return dict(sorted(found.items()))


class BroadcastExpansion(TraceRule):
    """An elementwise op broadcast its operands into a result larger than any of them.

    `(B, 1) - (B,)` is legal and gives `(B, B)`: every prediction is compared with every target and
    the loss is still a number, so the model trains on nonsense. Make the shapes agree first, e.g.
    `pred.squeeze(-1) - target` or `pred - target.unsqueeze(-1)`.
    """

    code = "NNL701"
    name = "broadcast-expansion"
    severity = Severity.ERROR
    check = "checks:check_broadcast"
    INVALID = (
        """\
from torch import nn


class PriceRegressor(nn.Module):  # nnlint: input=float32[B,16], float32[B]
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(16, 1)

    def forward(self, x, price):
        return ((self.net(x) - price) ** 2).mean()  # <-
""",
    )
    VALID = (
        """\
from torch import nn


class PriceRegressor(nn.Module):  # nnlint: input=float32[B,16], float32[B]
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(16, 1)

    def forward(self, x, price):
        return ((self.net(x).squeeze(-1) - price) ** 2).mean()
""",
    )


class LossShapeMismatch(TraceRule):
    """A loss received input and target of different shapes.

    Most losses broadcast (with only a warning) instead of failing, so `(B, 1)` predictions against
    `(B,)` targets silently compute a `(B, B)` loss. For cross-entropy, a `(B, 1)` class target is a
    shape error waiting to happen. Reshape the target (or the prediction) to match.
    """

    code = "NNL702"
    name = "loss-shape-mismatch"
    severity = Severity.ERROR
    check = "checks:check_loss_shapes"
    on_failed_forward = True
    INVALID = (
        """\
from torch import nn


class RatingModel(nn.Module):  # nnlint: input=float32[B,24], float32[B]
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(24, 1)
        self.criterion = nn.SmoothL1Loss()

    def forward(self, features, rating):
        return self.criterion(self.body(features), rating)  # <-
""",
    )
    VALID = (
        """\
from torch import nn


class RatingModel(nn.Module):  # nnlint: input=float32[B,24], float32[B]
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(24, 1)
        self.criterion = nn.SmoothL1Loss()

    def forward(self, features, rating):
        return self.criterion(self.body(features).squeeze(-1), rating)
""",
    )


class SoftmaxOverSingleton(TraceRule):
    """Softmax taken along a dimension of size 1: the output is constantly 1 (log-softmax: 0).

    Usually a wrong `dim` or a missing `unsqueeze`. The layer passes no gradient at all. Apply it over
    the class dimension.
    """

    code = "NNL703"
    name = "softmax-over-singleton"
    severity = Severity.ERROR
    check = "checks:check_softmax_singleton"
    INVALID = (
        """\
import torch
from torch import nn


class AttentionPooling(nn.Module):  # nnlint: input=float32[B,T,32]
    def __init__(self):
        super().__init__()
        self.score = nn.Linear(32, 1)

    def forward(self, h):
        weights = torch.softmax(self.score(h), dim=-1)  # <-
        return (weights * h).sum(dim=1)
""",
    )
    VALID = (
        """\
import torch
from torch import nn


class AttentionPooling(nn.Module):  # nnlint: input=float32[B,T,32]
    def __init__(self):
        super().__init__()
        self.score = nn.Linear(32, 1)

    def forward(self, h):
        weights = torch.softmax(self.score(h), dim=1)
        return (weights * h).sum(dim=1)
""",
    )


class BatchMixing(TraceRule):
    """Samples of a batch influence each other's outputs.

    Checked by gradients: in eval mode the output of every sample i may depend only on input sample
    i (one backward pass per sample, so one-directional mixing such as an RNN that lost
    `batch_first=True` is caught too). A `view` used where a `transpose` was meant, or a reduction
    over the batch, breaks that and the model quietly learns from the wrong samples. The finding
    points at the first op whose output mixes samples. Use `permute`/`transpose` to reorder
    dimensions before reshaping. Only the first input is a sample: weights, masks and index tensors
    passed to forward are not, and a (B, B) input (a graph's adjacency) makes the rows nodes.
    """

    code = "NNL704"
    name = "batch-mixing"
    severity = Severity.ERROR
    check = "analyze:gradient_leak"
    scope = "run"
    needs_values = True
    INVALID = (
        """\
import torch
from torch import nn


class SpeechClassifier(nn.Module):  # nnlint: input=float32[B,T,40]
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(40, 64)  # time-major: (T, B, features)
        self.head = nn.Linear(64, 8)

    def forward(self, x):
        x = x.view(x.size(1), x.size(0), -1)  # <-
        out, _ = self.rnn(x)
        return self.head(out[-1])
""",
    )
    VALID = (
        """\
import torch
from torch import nn


class SpeechClassifier(nn.Module):  # nnlint: input=float32[B,T,40]
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(40, 64)  # time-major: (T, B, features)
        self.head = nn.Linear(64, 8)

    def forward(self, x):
        x = x.transpose(0, 1)
        out, _ = self.rnn(x)
        return self.head(out[-1])
""",
    )


class BatchDimReduction(TraceRule):
    """A reduction or softmax over the batch dimension inside forward.

    Each sample's output then depends on the rest of the batch (and on the batch size). Reduce over
    the feature dimensions instead. A softmax over rows that a reshape made from the batch and its
    neighbours (`view(-1, vocab)` of a `(T, B, vocab)` output) counts too: it normalizes over every
    sample at once.
    """

    code = "NNL705"
    name = "batch-dim-reduction"
    severity = Severity.WARNING
    check = "checks:check_batch_reduction"
    INVALID = (
        """\
from torch import nn


class TabularNet(nn.Module):  # nnlint: input=float32[B,20]
    def __init__(self):
        super().__init__()
        self.mlp = nn.Linear(20, 3)

    def forward(self, x):
        x = x - x.mean(dim=0)  # <-
        return self.mlp(x)
""",
        """\
import torch.nn.functional as F
from torch import nn


class WordLM(nn.Module):  # nnlint: input=int64[T,B]
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.rnn = nn.GRU(16, 16)
        self.decoder = nn.Linear(16, 50)

    def forward(self, tokens):
        output, _ = self.rnn(self.embed(tokens))
        decoded = self.decoder(output).view(-1, 50)  # (T*B, vocab): time and batch merged
        return F.log_softmax(decoded, dim=0)  # <-
""",
    )
    VALID = (
        """\
from torch import nn


class TabularNet(nn.Module):  # nnlint: input=float32[B,20]
    def __init__(self):
        super().__init__()
        self.mlp = nn.Linear(20, 3)

    def forward(self, x):
        x = x - x.mean(dim=1, keepdim=True)
        return self.mlp(x)
""",
        """\
import torch.nn.functional as F
from torch import nn


class WordLM(nn.Module):  # nnlint: input=int64[T,B]
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.rnn = nn.GRU(16, 16)
        self.decoder = nn.Linear(16, 50)

    def forward(self, tokens):
        output, _ = self.rnn(self.embed(tokens))
        decoded = self.decoder(output).view(-1, 50)
        return F.log_softmax(decoded, dim=1)
""",
    )


class NonFiniteOutput(TraceRule):
    """NaN or Inf appeared in an activation on a standard-normal input at initialization.

    The first op that produced it is reported: typically `log` of zero, a division by zero, `sqrt` of
    a negative number or an overflowing `exp`. Add an epsilon or use the numerically stable variant.
    """

    code = "NNL706"
    name = "non-finite-output"
    severity = Severity.ERROR
    check = "checks:check_nonfinite"
    scope = "run"
    needs_values = True
    INVALID = (
        """\
import torch
from torch import nn


class LogEnergyNet(nn.Module):  # nnlint: input=float32[B,16]
    def __init__(self):
        super().__init__()
        self.filters = nn.Linear(16, 32)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        features = torch.log(self.filters(x))  # <-
        return self.head(features)
""",
    )
    VALID = (
        """\
import torch
from torch import nn


class LogEnergyNet(nn.Module):  # nnlint: input=float32[B,16]
    def __init__(self):
        super().__init__()
        self.filters = nn.Linear(16, 32)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        features = torch.log(self.filters(x).pow(2) + 1e-6)
        return self.head(features)
""",
    )


class InitialLossOff(TraceRule):
    """The initial cross-entropy is far above ln(C): the classifier starts overconfident.

    With C classes and a sensible init, the loss on random labels starts near ln(C). Much higher
    means large initial logits and wasted first epochs ("hockey stick" loss). Initialize the last
    layer's weights to zero or small values, or set its bias from the class priors.
    """

    code = "NNL707"
    name = "initial-loss-off"
    severity = Severity.WARNING
    check = "analyze:initial_loss_of_head"
    scope = "run"
    needs_values = True
    INVALID = (
        """\
from torch import nn


class DigitClassifier(nn.Module):  # nnlint: input=float32[B,64]
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 256), nn.LayerNorm(256), nn.GELU())
        self.head = nn.Linear(256, 10)
        nn.init.normal_(self.head.weight, std=1.0)

    def forward(self, x):
        return self.head(self.body(x))  # <-
""",
    )
    VALID = (
        """\
from torch import nn


class DigitClassifier(nn.Module):  # nnlint: input=float32[B,64]
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 256), nn.LayerNorm(256), nn.GELU())
        self.head = nn.Linear(256, 10)
        nn.init.normal_(self.head.weight, std=0.01)

    def forward(self, x):
        return self.head(self.body(x))
""",
    )


class DeadOrSaturatedActivations(TraceRule):
    """At initialization most of a layer's activations are dead (ReLU zero) or saturated (tanh/sigmoid).

    Over 90% of a ReLU's outputs zero, or of a tanh/sigmoid's outputs near +-1 / 0 / 1, means almost no
    gradient flows. Check input normalization and the weight init (He for ReLU, Xavier for tanh).
    """

    code = "NNL708"
    name = "dead-or-saturated-activations"
    severity = Severity.WARNING
    check = "checks:check_activations"
    scope = "run"
    needs_values = True
    INVALID = (
        """\
import torch.nn.functional as F
from torch import nn


class SparseAutoencoder(nn.Module):  # nnlint: input=float32[B,64]
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(64, 256)
        self.decoder = nn.Linear(256, 64)
        nn.init.constant_(self.encoder.bias, -1.0)

    def forward(self, x):
        latents = F.relu(self.encoder(x))  # <-
        return self.decoder(latents)
""",
    )
    VALID = (
        """\
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):  # nnlint: input=float32[B,32]
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 32)
        self.norm = nn.LayerNorm(32)
        nn.init.zeros_(self.norm.weight)  # zero-init residual branch: starts as the identity

    def forward(self, x):
        return x + F.relu(self.norm(self.fc(x)))
""",
        """\
import torch.nn.functional as F
from torch import nn


class SparseAutoencoder(nn.Module):  # nnlint: input=float32[B,64]
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(64, 256)
        self.decoder = nn.Linear(256, 64)

    def forward(self, x):
        latents = F.relu(self.encoder(x))
        return self.decoder(latents)
""",
    )


class VanishingOrExplodingGradients(TraceRule):
    """At initialization the first and last layers' gradient norms differ by more than 1e4x.

    Training will then barely move one end of the network or blow up the other. Use a standard
    initialization, normalization layers or residual connections.
    """

    code = "NNL709"
    name = "vanishing-or-exploding-gradients"
    severity = Severity.WARNING
    check = "analyze:gradient_norms"
    scope = "run"
    needs_values = True
    INVALID = (
        """\
from torch import nn


class DeepNet(nn.Module):  # nnlint: input=float32[B,32]
    def __init__(self, width=64, depth=8):
        super().__init__()
        layers = [nn.Linear(32, width), nn.Sigmoid()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.Sigmoid()]
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(width, 4)

    def forward(self, x):  # <-
        return self.head(self.layers(x))
""",
    )
    VALID = (
        """\
from torch import nn


class DeepNet(nn.Module):  # nnlint: input=float32[B,32]
    def __init__(self, width=64, depth=8):
        super().__init__()
        layers = [nn.Linear(32, width), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.ReLU()]
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(width, 4)

    def forward(self, x):
        return self.head(self.layers(x))
""",
    )


class DeviceHazard(TraceRule):
    """A tensor created in forward on a fixed device instead of the input's.

    It works on the CPU and breaks (or silently copies every step) once the model moves to a GPU.
    Create it with `device=x.device`, `torch.zeros_like(x)`, or register it as a buffer.
    """

    code = "NNL710"
    name = "device-hazard"
    severity = Severity.WARNING
    check = "checks:check_device"
    INVALID = (
        """\
import torch
from torch import nn


class CausalAttention(nn.Module):  # nnlint: input=float32[B,T,32]
    def __init__(self):
        super().__init__()
        self.query = nn.Linear(32, 32)

    def forward(self, x):
        T = x.size(1)
        scores = self.query(x) @ x.transpose(1, 2)
        mask = torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)  # <-
        return scores.masked_fill(mask, float("-inf")).softmax(dim=-1) @ x
""",
    )
    VALID = (
        """\
import torch
from torch import nn


class CausalAttention(nn.Module):  # nnlint: input=float32[B,T,32]
    def __init__(self):
        super().__init__()
        self.query = nn.Linear(32, 32)

    def forward(self, x):
        T = x.size(1)
        scores = self.query(x) @ x.transpose(1, 2)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(diagonal=1)
        return scores.masked_fill(mask, float("-inf")).softmax(dim=-1) @ x
""",
    )


class MisalignedReshape(TraceRule):
    """A view/reshape regroups dimensions out of order, scrambling elements.

    A reshape is aligned when each boundary of its output is a boundary of its input or evenly splits
    one input dimension. `(B, H, W) -> (B, W, H)` or `(B, heads, T, d) -> (B, T, heads * d)` without a
    permute is not: it mixes positions (or samples). Permute first, then reshape.
    """

    code = "NNL711"
    name = "misaligned-reshape"
    severity = Severity.WARNING
    check = "checks:check_reshape"
    INVALID = (
        """\
from torch import nn


class SelfAttention(nn.Module):  # nnlint: input=float32[B,T,32]
    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        y = (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v
        return y.reshape(B, T, C)  # <-
""",
    )
    VALID = (
        """\
from torch import nn


class SelfAttention(nn.Module):  # nnlint: input=float32[B,T,32]
    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        y = (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v
        return y.transpose(1, 2).reshape(B, T, C)
""",
    )


_CAUSAL_HEAD = """\
import torch
from torch import nn


class CausalSelfAttention(nn.Module):  # nnlint: input=float32[B,T,32]
    def __init__(self, dim=32, context=16):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.register_buffer("mask", torch.tril(torch.ones(context, context)))

    def forward(self, x):
        T = x.size(1)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        scores = q @ k.transpose(-2, -1) / 8
"""


class FutureLeakage(TraceRule):
    """A causal sequence model lets the output at position t see inputs after t.

    A language model trained with its targets shifted by one learns to copy the next token instead
    of predicting it when the causal mask is dropped, built the wrong way round (`triu` for
    `tril`), or softmax runs over the query axis, or attention is called with `is_causal=False`:
    training loss collapses and generation is garbage. Checked by gradients for models meant to be
    causal (a triangular mask buffer, `is_causal=True`, a causal name or flag): d out[t] / d x[t+1:]
    must be zero. The finding points at the first op whose output mixes in later positions. Mask the
    scores above the diagonal before a softmax over the key axis (`dim=-1`), or use
    `scaled_dot_product_attention(q, k, v, is_causal=True)`.
    """

    code = "NNL712"
    name = "future-leakage"
    severity = Severity.ERROR
    check = "analyze:future_leak"
    scope = "run"
    needs_values = True
    INVALID = (
        # the mask is registered but never applied
        _CAUSAL_HEAD + """\
        return torch.softmax(scores, dim=-1) @ v  # <-
""",
        # the mask built the wrong way round: the future is kept, the past hidden
        _CAUSAL_HEAD + """\
        scores = scores.masked_fill(self.mask[:T, :T].T == 0, float("-inf"))  # <-
        return torch.softmax(scores, dim=-1) @ v
""",
        # softmax over the query axis
        _CAUSAL_HEAD + """\
        scores = scores.masked_fill(self.mask[:T, :T] == 0, float("-inf"))
        return torch.softmax(scores, dim=-2).nan_to_num() @ v  # <-
""",
        """\
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):  # nnlint: input=float32[B,T,32]
    def __init__(self, dim=32):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return F.scaled_dot_product_attention(q, k, v, is_causal=False)  # <-
""",
    )
    VALID = (
        _CAUSAL_HEAD + """\
        scores = scores.masked_fill(self.mask[:T, :T] == 0, float("-inf"))
        return torch.softmax(scores, dim=-1) @ v
""",
        """\
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):  # nnlint: input=float32[B,T,32]
    def __init__(self, dim=32):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
""",
        # a bidirectional encoder: every position may see every other
        """\
from torch import nn


class SentenceEncoder(nn.Module):  # nnlint: input=float32[B,T,32]
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)

    def forward(self, x):
        return self.layer(x).mean(dim=1)
""",
    )


class ModelNotTraced(TraceRule):
    """A model in the checked files could not be built or traced; the message says why.

    Usually the constructor needs arguments nnlint cannot guess, or the input shape is unknown. Add
    them to `pyproject.toml`, e.g. `[tool.nnlint.models."Net"]` with `args = [784, 10]` and
    `input = "float32[B,784]"`.
    """

    code = "NNL790"
    name = "model-not-traced"
    severity = Severity.INFO
