"""Fitting the model: the network, several processes, progress, the logged run."""
