"""Usage fixture: models built only the way train.py builds them (see train.py)."""
import torch
from torch import nn


class Net(nn.Module):
    """An MNIST CNN: its head needs 28x28 images, which a guessed image size does not give."""

    def __init__(self, hidden, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.fc1 = nn.Linear(320, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):
        x = torch.relu(torch.max_pool2d(self.conv1(x), 2))
        x = torch.relu(torch.max_pool2d(self.conv2(x), 2))
        x = x.view(-1, 320)
        return self.fc2(torch.relu(self.fc1(x)))


class RowReader(nn.Module):
    """Reads an image row by row; the LSTM lost `batch_first=True`."""

    def __init__(self, rnn_type, width, hidden):
        super().__init__()
        if rnn_type not in ("LSTM", "GRU"):
            raise ValueError(f"unknown rnn_type {rnn_type!r}")
        self.rnn = getattr(nn, rnn_type)(width, hidden)
        self.head = nn.Linear(hidden, 10)

    def forward(self, images):
        out, _ = self.rnn(images)  # expect: NNL704
        return self.head(out[:, -1])


class Sequence(nn.Module):
    """Cast to float64 by its call site; forward makes float64 states."""

    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(1, 24)
        self.linear = nn.Linear(24, 1)

    def forward(self, x):
        h = torch.zeros(x.size(0), 24, dtype=torch.double, device=x.device)
        c = torch.zeros(x.size(0), 24, dtype=torch.double, device=x.device)
        h, c = self.cell(x, (h, c))
        return self.linear(h)
