# Python refuses this file ("duplicate argument"); libcst accepts it.
def forward(self, x, x):  # expect: NNL001
    return x
