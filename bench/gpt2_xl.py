"""A GPT-2-XL-sized decoder (48 layers, width 1600, 25 heads, tied embeddings: ~1.56B parameters).

Plain PyTorch, no configuration needed: nnlint builds it on the meta device, sees the parameter count
above the fake-tensor threshold and checks it with fake tensors, so memory stays independent of size.
"""
import torch
import torch.nn as nn

from gpt2_xl_blocks import Block


class GPT2XL(nn.Module):
    def __init__(self, vocab_size=50257, block_size=1024, n_layer=48, n_embd=1600, n_head=25):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.blocks = nn.ModuleList([Block(n_embd, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as in GPT-2

    def forward(self, idx):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))
