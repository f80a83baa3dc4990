"""epochline's benchmark suite (issue 10): `make bench`, or `python -m bench --help`.

The real stages run one by one in a temporary copy of the project, each in its own
process, as DVC runs them. Each is measured (wall time, CPU time, peak RSS) beside a
*floor*: the same work done the simplest way, measured the same way in the same run.

Floors (bench/floors/), and why each is a fair yardstick:
- load: make_synthetic (the same generator the stage calls), a finiteness check, one
  pyarrow write. Same rows, same columns, same Parquet defaults.
- normalize: pyarrow read of the stage's raw.parquet, the training-row mask from
  epochline.data.splitting (the one rule), per-column median and min-max on those rows with
  numpy, one pyarrow write with the columns and types the stage wrote.
- split: pyarrow reads of raw + normalized, the same assignment, three filtered writes.
- train: the stage's epochs and batch size over the stage's train/val tables, as a raw
  loop over preloaded tensors (the same optimizer, a seeded randperm per epoch,
  epochline.training.model.build, the per-epoch train/val scoring the stage also does);
  no MLflow.
- evaluate: the trained checkpoint run on the pyarrow-read test rows, the same metrics
  (epochline.evaluation.metrics), the same report files; no MLflow, no reloading of the logged
  model.
- training loop: that raw loop against epochline.training.model.fit on the same tensors, same
  torch threads and device, per batch size: samples per second.
- end to end: one process that generates, normalizes, splits, trains and evaluates in
  memory and logs to MLflow what the stages log (params, tags, per-epoch metrics, the
  served model, test metrics, plots); datasets are logged by digest and schema.
Floors never skip work the stages must do and use no cleverness the stages lack; they do
skip what only the stage split costs (process starts, Parquet round trips between stages,
reloading the logged model), which is what the end-to-end ratio shows.
"""
