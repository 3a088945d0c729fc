"""Two gloo processes: the codebook and every quantizer buffer stay identical on both ranks; an eval forward on
one rank alone does not wait for the other."""

import os
import socket
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hf_vqgen.models import VectorQuantizer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_on_rank(rank: int, world_size: int, port: int, codebook_update: str, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=timedelta(seconds=60))
    try:
        torch.manual_seed(0)  # same initial codebook on both ranks, as DDP's initial broadcast would give
        quantizer = VectorQuantizer(
            32, 4, codebook_update=codebook_update, kmeans_init=True, dead_code_threshold=3.0, ema_decay=0.8
        ).train()
        torch.manual_seed(100 + rank)  # different data and random draws on each rank
        for _ in range(5):
            quantizer(torch.randn(2, 4, 4, 4) * (1 + rank))
        if rank == 0:  # an eval forward on one rank alone (a validation grid) runs no collective, so cannot hang
            quantizer.eval()(torch.randn(1, 4, 2, 2))
            quantizer.train()
        dist.barrier()
        torch.save({k: v.clone() for k, v in quantizer.state_dict().items()}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _states_after_distributed_training(tmp_path, codebook_update):
    mp.spawn(_train_on_rank, args=(2, _free_port(), codebook_update, str(tmp_path)), nprocs=2, join=True)
    return [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]


def test_ema_statistics_kmeans_and_restarts_identical_on_every_rank(tmp_path):
    rank0, rank1 = _states_after_distributed_training(tmp_path, "ema")
    assert rank0.keys() == rank1.keys() and {"embed_sum", "cluster_size"} <= rank0.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    assert bool(rank0["initialized"])
