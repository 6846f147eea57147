"""Static rules, one module per family, and the facts they share (`facts/`). `nnlint.registry` imports the families."""
