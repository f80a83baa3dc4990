"""The logged model's code, and scoring rows with it."""
