"""Usage fixture: a graph layer (node features and an adjacency) and an attention block that
needs an input only its parent makes (rotary-like frequencies)."""
import torch
from torch import nn


class GraphConv(nn.Module):
    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_dim, out_dim) / in_dim ** 0.5)

    def forward(self, features, adjacency):
        return adjacency.softmax(dim=-1) @ (features @ self.weight)


class ScaledBlock(nn.Module):
    def __init__(self, settings):
        super().__init__()
        self.proj = nn.Linear(settings.width, settings.width)

    def forward(self, x, scales):
        return self.proj(x) * scales


class Stack(nn.Module):
    def __init__(self, width=24, depth=2):
        super().__init__()
        self.width = width
        self.blocks = nn.ModuleList(ScaledBlock(self) for _ in range(depth))

    def forward(self, x):
        scales = torch.linspace(0.5, 1.5, x.size(-1), device=x.device)
        for block in self.blocks:
            x = block(x, scales)
        return x
