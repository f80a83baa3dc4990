"""What every stage shares: params, paths, atomic files, the runner, errors, numerics."""
