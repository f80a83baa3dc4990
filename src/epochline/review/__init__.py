"""Showing a decision to the people who approve it: compare, model card, seeds, history."""
