"""Training on several processes or machines, with PyTorch's own launcher (torchrun).

When train.nproc_per_node or train.nnodes is above 1, the train stage starts itself again
under `torchrun` (`python -m torch.distributed.run`). Every process then reads its own
contiguous shard of the training rows and trains the same model under
DistributedDataParallel (gloo on CPUs, NCCL on GPUs); rank 0 alone talks to MLflow and
writes the outputs. torchrun forwards SIGTERM and SIGINT to the processes it started.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist

from epochline.errors import UserError
from epochline.params import TrainParams


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


def torchrun_command(params: TrainParams, module: str) -> list[str]:
    """torchrun starting `module` on this machine's share of the processes.

    One machine: a standalone rendezvous on a free local port. Several: torchrun reads
    the rendezvous from its own environment variables (PET_RDZV_BACKEND,
    PET_RDZV_ENDPOINT, PET_RDZV_ID), set the same on every machine.
    """
    command = [
        *(sys.executable, "-m", "torch.distributed.run"),
        *(f"--nnodes={params.nnodes}", f"--nproc-per-node={params.nproc_per_node}"),
    ]
    if params.nnodes == 1:
        command.append("--standalone")
    elif not os.environ.get("PET_RDZV_ENDPOINT"):
        raise UserError(
            f"train.nnodes = {params.nnodes}: set PET_RDZV_BACKEND=c10d, "
            "PET_RDZV_ENDPOINT=<host:port> and PET_RDZV_ID=<job> the same on every machine "
            "(torchrun's rendezvous); allowed without them: train.nnodes = 1"
        )
    return [*command, "-m", module]


def relaunch(params: TrainParams, module: str) -> NoReturn:
    """Replace this process by torchrun: a scheduler's or DVC's signals then reach it."""
    if params.device == "mps":
        raise UserError(
            "train.device = 'mps' with more than one process: PyTorch has no distributed "
            "backend for MPS; allowed: train.nproc_per_node = 1 and train.nnodes = 1 with mps"
        )
    command = torchrun_command(params, module)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)


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
