"""Training on several processes or machines, with PyTorch's own launcher (torchrun).

When train.nproc_per_node or train.nnodes is above 1, the train stage starts itself again
in that many processes with torchrun's launcher. Every process then reads its own
contiguous shard of the training rows and trains the same model under
DistributedDataParallel (gloo on CPUs, NCCL on GPUs); rank 0 alone talks to MLflow and
writes the outputs. The launcher stops every process on SIGTERM or SIGINT, and all of
them when one fails.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.elastic.rendezvous import RendezvousError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from epochline.core.errors import UserError, first_line
from epochline.core.params import TrainParams


@dataclass(frozen=True)
class World:
    """This process among all the training processes (torchrun's RANK, WORLD_SIZE...)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = World()


def current() -> World:
    """The world torchrun set up for this process; a single process otherwise."""
    env = os.environ
    if "TORCHELASTIC_RUN_ID" not in env:
        return SINGLE
    return World(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"]))


class WorkerFailed(UserError):
    """A training process failed; it printed its own one-line error (or traceback) above."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _check(params: TrainParams) -> None:
    if params.device == "mps":
        raise UserError(
            "train.device = 'mps' with more than one process: PyTorch has no distributed "
            "backend for MPS; allowed: train.nproc_per_node = 1 and train.nnodes = 1 with mps"
        )
    # auto is always rounded to a multiple of the processes (model.auto_batch_size).
    if isinstance(params.batch_size, int) and params.batch_size % params.world_size:
        raise UserError(
            f"train.batch_size = {params.batch_size} does not split over "
            f"{params.world_size} processes (nproc_per_node x nnodes); allowed: a multiple of "
            f"{params.world_size}"
        )


def rendezvous(params: TrainParams, env: Mapping[str, str]) -> dict[str, Any]:
    """Where the processes meet: a free local port on one machine (torchrun --standalone);
    across machines, torchrun's static rendezvous at MASTER_ADDR:MASTER_PORT, where the
    machine with NODE_RANK 0 (the one running DVC) holds rank 0, which writes the outputs."""
    if params.nnodes == 1:
        return {"rdzv_backend": "c10d", "rdzv_endpoint": "localhost:0", "run_id": uuid.uuid4().hex}
    missing = [k for k in ("MASTER_ADDR", "NODE_RANK") if not env.get(k)]
    rank = env.get("NODE_RANK", "")
    if missing or not rank.isdigit() or int(rank) >= params.nnodes:
        problem = f"{' and '.join(missing)} not set" if missing else f"NODE_RANK={rank!r}"
        raise UserError(
            f"train.nnodes = {params.nnodes}: {problem}; set MASTER_ADDR (the machine running "
            f"dvc repro), MASTER_PORT (default 29500) and NODE_RANK (0 there, 1 to "
            f"{params.nnodes - 1} on the others) on every machine"
        )
    return {
        "rdzv_backend": "static",
        "rdzv_endpoint": f"{env['MASTER_ADDR']}:{env.get('MASTER_PORT') or 29500}",
        "rdzv_configs": {"rank": int(env["NODE_RANK"])},
        "run_id": "epochline",
    }


def launch(params: TrainParams, module: str) -> None:
    """Run `python -m module` in train.nproc_per_node processes with torchrun's launcher
    (torch.distributed.launcher: what the torchrun command calls), and wait for them."""
    _check(params)
    # torchrun's command line gives each process 1 thread; share this machine's cores.
    threads = max(1, (os.cpu_count() or 1) // params.nproc_per_node)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    # The launcher logs each stop it makes; the failing process's own line says why.
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    config = LaunchConfig(
        min_nodes=params.nnodes,
        max_nodes=params.nnodes,
        nproc_per_node=params.nproc_per_node,
        max_restarts=0,
        **rendezvous(params, os.environ),
    )
    try:
        elastic_launch(config, sys.executable)("-m", module)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        raise WorkerFailed(
            f"train: process {rank} of {params.world_size} exited {failure.exitcode} "
            "(its error is above); the others were stopped",
            failure.exitcode if failure.exitcode > 0 else 1,
        ) from None
    except RendezvousError as exc:
        raise UserError(f"train: the processes could not meet ({first_line(exc)})") from None
    except SignalException as exc:  # the launcher stopped the processes first
        raise SystemExit(128 + int(exc.sigval)) from None


@contextmanager
def process_group(world: World, device: torch.device) -> Iterator[None]:
    """Join the other processes for the block (nothing to join for a single one)."""
    if world.size == 1:
        yield
        return
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def all_sum(values: torch.Tensor, world: World) -> torch.Tensor:
    """`values` summed over every process (float64, so sums of losses stay exact)."""
    if world.size > 1:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def pad(
    tensors: tuple[torch.Tensor, torch.Tensor], length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeat a shard's first rows up to `length`: every process then takes the same number
    of steps per epoch, which DistributedDataParallel needs (as DistributedSampler pads)."""
    x, y = tensors
    extra = length - len(x)
    if extra <= 0:
        return x, y
    index = torch.arange(extra) % max(len(x), 1)
    return torch.cat([x, x[index]]), torch.cat([y, y[index]])
