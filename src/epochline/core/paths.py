"""Where the stages read and write, relative to the repo root (DVC runs stages there)."""

from pathlib import Path

RAW = Path("data/raw.parquet")
RAW_MANIFEST = Path("data/raw_manifest.json")  # which file each run of raw rows came from
NORMALIZED = Path("data/normalized.parquet")
SCHEMA = Path("data/schema.json")  # columns, kinds and classes, from load
PREPROCESSOR = Path("data/preprocessor.json")  # fills, categories and scaling, from train rows
SPLIT_DIR = Path("data/split")
TRAIN = SPLIT_DIR / "train.parquet"
VAL = SPLIT_DIR / "val.parquet"
TEST = SPLIT_DIR / "test.parquet"  # raw rows: scored through the logged model, as served
SPLIT_FILES = {"train": TRAIN, "val": VAL, "test": TEST}  # by name, as runs log the datasets
CHECKPOINT = Path("models/model.pt")
MODEL_INFO = Path("models/model.json")  # what the model is; its MLflow run is found by this
HISTORY = Path("reports/train_history.json")
METRICS = Path("reports/metrics.json")
# The yardsticks' test metrics and evaluate's warnings: not DVC metrics, so that
# `dvc exp show` keeps the network's own metrics and the params in view.
VERDICT = Path("reports/verdict.json")
ROC = Path("reports/roc.json")
CONFUSION = Path("reports/confusion.csv")
PREDICTIONS = Path("reports/test_predictions.parquet")
# The model card (evaluation/card.py): slices, data, training, evaluation, limits, lineage.
MODEL_CARD = Path("reports/model_card.md")

# Every output of the pipeline, as dvc.yaml declares them (a test checks the two agree).
# DVC caches the first; git tracks the second (`cache: false`): what a retrain commits.
CACHED_OUTPUTS = (RAW, RAW_MANIFEST, SCHEMA, NORMALIZED, PREPROCESSOR, SPLIT_DIR, CHECKPOINT,
                  MODEL_INFO, PREDICTIONS)  # fmt: skip
TRACKED_OUTPUTS = (HISTORY, METRICS, VERDICT, ROC, CONFUSION, MODEL_CARD)
