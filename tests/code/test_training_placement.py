"""Where training runs: the device, the processes and their shards, read from Parquet in parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from epochline.core.errors import UserError
from epochline.core.params import TrainParams, parse_params
from epochline.data import tables
from epochline.training import distributed, model


@pytest.mark.parametrize(("rows", "world"), [(10, 3), (7, 2), (1, 4), (1000, 8)])
def test_shards_cover_every_row_once_and_differ_by_at_most_one(rows: int, world: int) -> None:
    bounds = [tables.shard_bounds(rows, rank, world) for rank in range(world)]
    assert [b[0] for b in bounds[1:]] == [b[1] for b in bounds[:-1]]
    assert (bounds[0][0], bounds[-1][1]) == (0, rows)
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_read_rows_reads_a_shard_across_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    frame = pd.DataFrame({"a": np.arange(100, dtype=np.float32), "b": np.arange(100) % 2})
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=7)
    parts = [
        tables.read_rows(path, "t", *tables.shard_bounds(100, r, 3), ["a", "b"]) for r in range(3)
    ]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), frame)
    assert tables.row_count(path, "t") == 100
    assert tables.head(path, "t", 5)["a"].tolist() == [0, 1, 2, 3, 4]


def test_digest_follows_the_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0]}), a)
    pq.write_table(pa.table({"x": [1.0, 2.0]}), b)
    assert tables.digest({"t": a}) == tables.digest({"t": b})
    pq.write_table(pa.table({"x": [1.0, 3.0]}), b)
    assert tables.digest({"t": a}) != tables.digest({"t": b})


def test_missing_table_is_one_line() -> None:
    with pytest.raises(UserError, match=r"train table not found; run the earlier stages"):
        tables.row_count(Path("nowhere/train.parquet"), "train table")


def test_padding_repeats_a_shards_first_rows() -> None:
    x, y = torch.arange(6.0).reshape(3, 2), torch.tensor([0.0, 1.0, 0.0])
    px, py = distributed.pad((x, y), 5)
    assert px.tolist() == [[0, 1], [2, 3], [4, 5], [0, 1], [2, 3]]
    assert py.tolist() == [0, 1, 0, 0, 1]
    assert distributed.pad((x, y), 3)[0] is x


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_that_is_not_there_is_one_line() -> None:
    with pytest.raises(UserError, match=r"train.device = 'cuda', but PyTorch .* sees no such"):
        model.resolve_device("cuda")


def test_auto_picks_the_cpu_without_a_gpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "mps" if model._mps() else "cpu"
    assert model.resolve_device("auto").type == expected


def test_unknown_device_is_refused_by_params() -> None:
    with pytest.raises(UserError, match=r"train.device = 'tpu' is not allowed; allowed: 'auto'"):
        parse_params({"train": {"device": "tpu"}})


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"nproc_per_node": 2, "batch_size": 63}, r"batch_size = 63 does not split over 2"),
        ({"nproc_per_node": 2, "device": "mps"}, r"no distributed backend for MPS"),
    ],
)
def test_launch_refuses_before_starting_anything(train: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=message):
        distributed.launch(TrainParams(**train), "epochline.stages.train")


def test_several_machines_need_the_rendezvous_named() -> None:
    params = TrainParams(nnodes=2)
    with pytest.raises(UserError, match=r"nnodes = 2: MASTER_ADDR and NODE_RANK not set; set"):
        distributed.rendezvous(params, {})
    with pytest.raises(UserError, match=r"nnodes = 2: MASTER_ADDR not set"):
        distributed.rendezvous(params, {"NODE_RANK": "0"})
    with pytest.raises(UserError, match=r"NODE_RANK='2'; set MASTER_ADDR"):
        distributed.rendezvous(params, {"MASTER_ADDR": "h", "NODE_RANK": "2"})
    found = distributed.rendezvous(params, {"MASTER_ADDR": "h", "NODE_RANK": "1"})
    assert found["rdzv_endpoint"] == "h:29500"
    assert found["rdzv_configs"] == {"rank": 1}
    assert distributed.rendezvous(TrainParams(), {})["rdzv_endpoint"] == "localhost:0"
