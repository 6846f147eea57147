# Python's symbol table refuses this file; libcst accepts it.
nonlocal weights  # expect: NNL001
