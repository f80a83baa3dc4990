"""epochline: a reproducible, experiment-tracked training pipeline."""

__version__ = "0.1.0"
