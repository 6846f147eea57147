"""Tracing layer: hazards found by running the model on synthesized input."""
