"""What developers and CI run, never shipped: service stacks, test servers."""
