"""MLflow: the store, what a run records, the model registry."""
