"""The retrain loop: compare, decide, record, report; drift and the lock."""
