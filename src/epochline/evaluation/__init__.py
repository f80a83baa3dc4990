"""Judging a model: metrics, plots, baselines."""
