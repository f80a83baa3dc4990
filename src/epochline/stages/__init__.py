"""One module per DVC stage: thin scripts around the domain modules."""
