"""`nnlint run`: the user's own training script, run in a child process with probes (NNL8xx).

rules.py holds the rule metadata (never imports torch); runner.py starts and bounds the child and turns
its results into diagnostics; bootstrap.py is the child's entry point, probes.py what it records and
verdicts.py what it concludes; table.py and plot.py draw the recorded curves.
"""
