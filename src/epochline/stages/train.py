"""Stage train: fit the classifier, log the run and the serving model to MLflow (runs.py).

torch loads only after params.yaml is read: `train.numerics` decides which kernels torch
and MKL load with (numerics.py).
"""

from epochline.core import numerics
from epochline.core.params import load_params
from epochline.core.runner import importing, run_main


def main() -> None:
    params = load_params()
    numerics.select(params.train.numerics)
    with importing():
        from epochline.training import runs  # torch loads here, with the numerics just chosen

    runs.train_stage(params)


if __name__ == "__main__":
    run_main(main)
