# Python refuses this file ("'break' outside loop"); libcst accepts it.
import torch.nn.functional as F

x = F.softmax(y, dim=-1)
break  # expect: NNL001
