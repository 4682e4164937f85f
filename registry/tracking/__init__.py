"""Experiment tracking behind the MLflow-compatible API: experiments, runs, logged models and their artifacts.

Writes here are training telemetry, not registry state: experiment, run and logged-model lifecycle changes
emit domain events, but individual params, metrics and tags do not (a training loop logs thousands).
Visibility: staff see everything; others see the experiments they own plus the shared Default (id 0), and
the runs and logged models they created or that live in their experiments. Writes need the same.
"""
