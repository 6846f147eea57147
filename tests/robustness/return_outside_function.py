# Python refuses this file ("'return' outside function"); libcst accepts it.
import torch

return torch.zeros(3)  # expect: NNL001
