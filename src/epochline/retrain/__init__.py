"""The retrain loop: compare, decide, record, report; drift and the lock; the pipeline's model
with its run complete in this store (which `epochline repro` shows too)."""
