"""NNL8: what `nnlint run` reports from the first steps of a real training run. Metadata only: no torch here.

Each example is a whole training script; the rule-example test runs it through the real `nnlint run`
(with `RUN_ARGS`), so examples train a few steps on tiny synthetic data.
"""

from typing import ClassVar

from nnlint.diagnostics import Severity
from nnlint.rule import Rule


class RunRule(Rule):
    layer = "run"
    RUN_ARGS: ClassVar[tuple[str, ...]] = ()  # options the examples need (e.g. --overfit)


class LossBroadcast(RunRule):
    """A loss compared predictions and targets of different shapes that broadcast.

    `mse_loss(out, y)` with `out` of shape `(B, 1)` and `y` of shape `(B,)` computes a `(B, B)` matrix
    of every prediction against every target and averages it: the loss is a number, training runs, and
    the model learns to predict the batch mean. The same happens in a hand-written `((out - y) ** 2).mean()`.
    Make the shapes agree: `out.squeeze(-1)` or `y.unsqueeze(-1)`.
    """

    code = "NNL801"
    name = "loss-broadcast"
    severity = Severity.ERROR
    INVALID = (
        """\
import torch
from torch import nn

x = torch.randn(256, 8)
y = x.sum(dim=1)
model = nn.Linear(8, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for step in range(10):
    idx = torch.randint(0, 256, (32,))
    loss = nn.functional.mse_loss(model(x[idx]), y[idx])  # <-
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
        """\
import torch
from torch import nn

x = torch.randn(256, 8)
y = x.sum(dim=1)
model = nn.Linear(8, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for step in range(10):
    idx = torch.randint(0, 256, (32,))
    loss = ((model(x[idx]) - y[idx]) ** 2).mean()  # <-
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )
    VALID = (
        """\
import torch
from torch import nn

x = torch.randn(256, 8)
y = x.sum(dim=1)
model = nn.Linear(8, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for step in range(10):
    idx = torch.randint(0, 256, (32,))
    loss = nn.functional.mse_loss(model(x[idx]).squeeze(-1), y[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )


class UnnormalizedInput(RunRule):
    """The model's input is not normalized: 0-255 pixel values, or features with mean and std far from 0 and 1.

    Raw scales saturate activations and make the first layer's gradients huge, so training is slow or
    unstable. Scale images to [0, 1] (`x.float() / 255`) and standardize them (`transforms.Normalize`),
    or standardize features with statistics of the training set.
    """

    code = "NNL802"
    name = "unnormalized-input"
    severity = Severity.WARNING
    INVALID = (
        """\
import torch
from torch import nn

images = torch.randint(0, 256, (512, 1, 8, 8), dtype=torch.uint8)
labels = torch.randint(0, 10, (512,))
model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for start in range(0, 320, 32):
    xb, yb = images[start:start + 32].float(), labels[start:start + 32]
    logits = model(xb)  # <-
    loss = nn.functional.cross_entropy(logits, yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )
    VALID = (
        """\
import torch
from torch import nn

images = torch.randint(0, 256, (512, 1, 8, 8), dtype=torch.uint8)
labels = torch.randint(0, 10, (512,))
model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for start in range(0, 320, 32):
    xb, yb = images[start:start + 32].float() / 255, labels[start:start + 32]
    logits = model(xb)
    loss = nn.functional.cross_entropy(logits, yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )


class FeatureScaleMismatch(RunRule):
    """Tabular features whose standard deviations differ by more than 100x.

    The large features dominate the first layer's output and its gradient, so gradient descent follows
    them and barely learns from the small ones. Standardize every feature (`StandardScaler`, or subtract
    the training mean and divide by the training std per column).
    """

    code = "NNL803"
    name = "feature-scale-mismatch"
    severity = Severity.WARNING
    INVALID = (
        """\
import torch
from torch import nn

age = torch.rand(512, 1) * 60 + 20
income = torch.rand(512, 1) * 90000 + 10000
rooms = torch.randint(1, 6, (512, 1)).float()
features = torch.cat([age, income, rooms], dim=1)
price = (income / 1e5 + rooms / 5).squeeze(1)
model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for start in range(0, 320, 32):
    pred = model(features[start:start + 32]).squeeze(1)  # <-
    loss = nn.functional.mse_loss(pred, price[start:start + 32])
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )
    VALID = (
        """\
import torch
from torch import nn

age = torch.rand(512, 1) * 60 + 20
income = torch.rand(512, 1) * 90000 + 10000
rooms = torch.randint(1, 6, (512, 1)).float()
features = torch.cat([age, income, rooms], dim=1)
price = (income / 1e5 + rooms / 5).squeeze(1)
features = (features - features.mean(dim=0)) / features.std(dim=0)
model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for start in range(0, 320, 32):
    pred = model(features[start:start + 32]).squeeze(1)
    loss = nn.functional.mse_loss(pred, price[start:start + 32])
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )


class LabelProblem(RunRule):
    """Class labels outside [0, C), a single class, or the same labels in every batch.

    Labels numbered from 1 crash cross-entropy (or, with one spare output, leave a class that never
    occurs); one class only, or identical batches, mean the loader does not deliver the data you think
    (a new iterator every step, data sorted by class without shuffling). A strongly imbalanced class
    distribution is reported as info: weight the loss or resample.
    """

    code = "NNL804"
    name = "label-problem"
    severity = Severity.WARNING
    INVALID = (
        """\
import torch
from torch import nn

x = torch.randn(512, 20)
digit = torch.randint(1, 11, (512,))  # labels 1..10
model = nn.Linear(20, 10)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for start in range(0, 320, 32):
    loss = nn.functional.cross_entropy(model(x[start:start + 32]), digit[start:start + 32])  # <-
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )
    VALID = (
        """\
import torch
from torch import nn

x = torch.randn(512, 20)
digit = torch.randint(1, 11, (512,)) - 1  # labels 0..9
model = nn.Linear(20, 10)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for start in range(0, 320, 32):
    loss = nn.functional.cross_entropy(model(x[start:start + 32]), digit[start:start + 32])
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )


class InitialLossOff(RunRule):
    """The first loss is far from what an untrained model should give.

    An untrained classifier predicts roughly uniform probabilities, so its first cross-entropy is close
    to ln(C); an untrained regressor should not do much worse than predicting the target mean. A first
    loss far above that means an overconfident or badly scaled initialization, or targets far from zero:
    initialize the last layer small (or its bias to the class priors / target mean), or standardize the
    targets. Skipped when weights were loaded from a checkpoint.
    """

    code = "NNL805"
    name = "initial-loss-off"
    severity = Severity.WARNING
    INVALID = (
        """\
import torch
from torch import nn

x = torch.randn(512, 20)
y = torch.randint(0, 10, (512,))
model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10))
nn.init.normal_(model[2].weight, std=3.0)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for start in range(0, 320, 32):
    loss = nn.functional.cross_entropy(model(x[start:start + 32]), y[start:start + 32])  # <-
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
        """\
import torch
from torch import nn

x = torch.randn(512, 4)
price = 200_000 + 20_000 * x[:, 0]
model = nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=1e-3)
for start in range(0, 320, 32):
    pred = model(x[start:start + 32]).squeeze(1)
    loss = nn.functional.mse_loss(pred, price[start:start + 32])  # <-
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )
    VALID = (
        """\
import torch
from torch import nn

x = torch.randn(512, 20)
y = torch.randint(0, 10, (512,))
model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for start in range(0, 320, 32):
    loss = nn.functional.cross_entropy(model(x[start:start + 32]), y[start:start + 32])
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )


class CannotOverfitBatch(RunRule):
    """With `--overfit`: trained on its first batch over and over, the model's loss did not fall by 90%.

    Any model with enough capacity memorizes one batch. If it cannot, something between the data and the
    update is broken: gradients cleared before the step, a loss with the wrong sign, a learning rate far
    too low or too high, inputs and labels that do not belong together. `--overfit` runs the script again
    with every batch replaced by the first one for `--overfit-steps` steps (default 100): extra cost is
    one more run of that many steps.
    """

    code = "NNL806"
    name = "cannot-overfit-batch"
    severity = Severity.WARNING
    RUN_ARGS = ("--overfit", "--overfit-steps", "60")
    INVALID = (
        """\
import torch
from torch import nn

x = torch.randn(512, 20)
y = (x[:, 0] > 0).long()
model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(100):
    for start in range(0, 512, 64):
        loss = nn.functional.cross_entropy(model(x[start:start + 64]), y[start:start + 64])  # <-
        loss.backward()
        opt.zero_grad()
        opt.step()
""",
    )
    VALID = (
        """\
import torch
from torch import nn

x = torch.randn(512, 20)
y = (x[:, 0] > 0).long()
model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(100):
    for start in range(0, 512, 64):
        loss = nn.functional.cross_entropy(model(x[start:start + 64]), y[start:start + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
""",
    )


class IgnoresInput(RunRule):
    """With `--baseline`: a copy trained on zeroed inputs reached the same loss as the real run.

    If the model does no better with its input than without it, it ignores the input (a forward that
    drops it, inputs shuffled apart from their labels) or the labels leak through another path. The
    baseline run trains the script again for the same steps with the model's first input zeroed: extra
    cost is one more run. Judge it after enough steps for the real run to beat predicting the prior.
    """

    code = "NNL807"
    name = "ignores-input"
    severity = Severity.WARNING
    RUN_ARGS = ("--baseline", "--steps", "30")
    INVALID = (
        """\
import torch
from torch import nn

torch.manual_seed(1)  # a run that is the same every time
x = torch.randn(960, 10)
y = (x[:, 0] + x[:, 1] > 0).long()
x = x[torch.randperm(960)]  # shuffles the inputs apart from their labels
model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for start in range(0, 960, 32):
    logits = model(x[start:start + 32])  # <-
    loss = nn.functional.cross_entropy(logits, y[start:start + 32])
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )
    VALID = (
        """\
import torch
from torch import nn

x = torch.randn(960, 10)
y = (x[:, 0] + x[:, 1] > 0).long()
order = torch.randperm(960)
x, y = x[order], y[order]
model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for start in range(0, 960, 32):
    logits = model(x[start:start + 32])
    loss = nn.functional.cross_entropy(logits, y[start:start + 32])
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )


class GradientProblem(RunRule):
    """Gradients that vanish or explode across layers, parameters that never get a gradient, or parameters
    that get one but are in no optimizer.

    A layer left out of the optimizer never trains although it receives gradients; a detached tensor
    (`.detach()`, `.data`, `.item()` rebuilt into a tensor) cuts everything before it off from the loss;
    gradient norms differing by orders of magnitude across layers stall the early layers or blow up.
    Pass every trainable parameter to the optimizer, keep the graph connected, and use a standard
    initialization, normalization layers or residual connections.
    """

    code = "NNL808"
    name = "gradient-problem"
    severity = Severity.WARNING
    INVALID = (
        """\
import torch
from torch import nn

x = torch.randn(512, 20)
y = (x[:, 0] > 0).long()
model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.SGD(model[2].parameters(), lr=0.1)  # <-
for start in range(0, 320, 32):
    loss = nn.functional.cross_entropy(model(x[start:start + 32]), y[start:start + 32])
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
        """\
import torch
from torch import nn

x = torch.randn(512, 20)
y = (x[:, 0] > 0).long()
encoder = nn.Sequential(nn.Linear(20, 32), nn.ReLU())  # <-
head = nn.Linear(32, 2)
opt = torch.optim.SGD([*encoder.parameters(), *head.parameters()], lr=0.1)
for start in range(0, 320, 32):
    features = encoder(x[start:start + 32]).detach()
    loss = nn.functional.cross_entropy(head(features), y[start:start + 32])
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )
    VALID = (
        """\
import torch
from torch import nn

x = torch.randn(512, 20)
y = (x[:, 0] > 0).long()
encoder = nn.Sequential(nn.Linear(20, 32), nn.ReLU())
head = nn.Linear(32, 2)
opt = torch.optim.SGD([*encoder.parameters(), *head.parameters()], lr=0.1)
for start in range(0, 320, 32):
    features = encoder(x[start:start + 32])
    loss = nn.functional.cross_entropy(head(features), y[start:start + 32])
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )


class NonFinite(RunRule):
    """A NaN or Inf appeared in the loss, a gradient or a weight.

    Once a NaN is in the weights every later step is wasted. The report names the step and the layer
    where it appeared first; the usual causes are a learning rate that diverges, `log` or division of
    zero, or an overflow in half precision. Lower the learning rate, clip gradients, guard the op.
    """

    code = "NNL809"
    name = "non-finite"
    severity = Severity.ERROR
    INVALID = (
        """\
import torch
from torch import nn

x = torch.randn(512, 8) * 3
y = x @ torch.randn(8, 1)
model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
opt = torch.optim.SGD(model.parameters(), lr=2.0)
for start in range(0, 512, 32):
    loss = nn.functional.mse_loss(model(x[start:start + 32]), y[start:start + 32])  # <-
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )
    VALID = (
        """\
import torch
from torch import nn

x = torch.randn(512, 8) * 3
y = x @ torch.randn(8, 1)
model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
opt = torch.optim.SGD(model.parameters(), lr=1e-3)
for start in range(0, 512, 32):
    loss = nn.functional.mse_loss(model(x[start:start + 32]), y[start:start + 32])
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )


class LossNotDecreasing(RunRule):
    """The smoothed training loss did not go down over the steps that ran.

    Over the first steps a working setup lowers the loss. A flat or rising curve means a learning rate
    far too small or too large (or a warm-up that starts at zero), or updates that do not reach the
    weights. Try a learning rate 10x larger and smaller, and `--overfit`.
    """

    code = "NNL810"
    name = "loss-not-decreasing"
    severity = Severity.INFO
    INVALID = (
        """\
import torch
from torch import nn

torch.manual_seed(0)  # a run that is the same every time
x = torch.randn(512, 20)
y = (x[:, 0] > 0).long()
model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.SGD(model.parameters(), lr=1e-7)
for start in range(0, 512, 32):
    loss = nn.functional.cross_entropy(model(x[start:start + 32]), y[start:start + 32])  # <-
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )
    VALID = (
        """\
import torch
from torch import nn

x = torch.randn(512, 20)
y = (x[:, 0] > 0).long()
model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.5)
for start in range(0, 512, 32):
    loss = nn.functional.cross_entropy(model(x[start:start + 32]), y[start:start + 32])
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )


class DataLoadingBottleneck(RunRule):
    """More than half of each training step was spent waiting for the DataLoader.

    The model sits idle while batches are prepared in the main process. Load in parallel
    (`num_workers=4` or more, `persistent_workers=True`), add `pin_memory=True` when training on a GPU,
    and move expensive decoding or augmentation out of `__getitem__` where you can.
    """

    code = "NNL811"
    name = "data-loading-bottleneck"
    severity = Severity.INFO
    INVALID = (
        """\
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class SlowImages(Dataset):
    def __len__(self):
        return 512

    def __getitem__(self, i):
        pixels = [math.sin(i * k) for k in range(30000)]  # decoding a file
        return torch.tensor(pixels[:16]), i % 2


loader = DataLoader(SlowImages(), batch_size=16)  # <-
model = nn.Linear(16, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )
    VALID = (
        """\
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(512, 16), torch.randint(0, 2, (512,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(16, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )


class RunFailed(RunRule):
    """The script did not get through its first steps: it crashed, timed out, exceeded the memory cap or
    needs a device this machine lacks.

    The message summarises the exception at the failing line of your code. For a timeout, raise
    `--time` or make the first steps cheaper (a smaller config); for memory, `[tool.nnlint.run] memory`;
    for CUDA, choose the device with `torch.cuda.is_available()`.
    """

    code = "NNL890"
    name = "run-failed"
    severity = Severity.ERROR
    INVALID = (
        """\
import torch
from torch import nn

x = torch.randn(256, 3, 8, 8)
model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))  # conv shrinks 8 -> 6
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for start in range(0, 256, 32):
    logits = model(x[start:start + 32])  # <-
""",
        """\
import torch
from torch import nn

model = nn.Linear(4, 2).cuda()  # <-
""",
    )
    VALID = (
        """\
import torch
from torch import nn

device = "cuda" if torch.cuda.is_available() else "cpu"
x = torch.randn(256, 3, 8, 8)
model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for start in range(0, 256, 32):
    loss = model(x[start:start + 32].to(device)).logsumexp(dim=1).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
    )
