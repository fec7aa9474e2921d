"""Under DDP the hard / noisy ranking covers the global batch (2 CPU processes, gloo)."""

import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rdfer.losses import ReweightConfig, ReweightedLoss, partition

WORLD, PER_RANK, C = 2, 6, 7
# Global batch of 12 = rank 0's 6 then rank 1's 6. Rank 1 holds all the low
# agreements, so a per-rank ranking would differ from the global one.
AGREEMENT = [1.0, 1.0, 0.75, 1.0, 0.75, 1.0, 0.25, 0.5, 0.25, 0.5, 1.0, 0.75]
TARGET_LOGIT = [-2.0, -0.1, -1.0, -3.0, -0.5, -0.2, -1.0, -2.5, -0.3, -0.4, -0.6, -4.0]
CLIPS = {1.0: (0, 0, 0, 0), 0.75: (0, 0, 0, 1), 0.5: (0, 0, 1, 2), 0.25: (0, 1, 2, 3)}


def global_batch():
    targets = torch.arange(WORLD * PER_RANK) % C
    logits = torch.zeros(WORLD * PER_RANK, C)
    logits[torch.arange(len(targets)), targets] = torch.tensor(TARGET_LOGIT)
    clip_logits = torch.zeros(len(targets), 4, C)
    for b, a in enumerate(AGREEMENT):
        for k, cls in enumerate(CLIPS[a]):
            clip_logits[b, k, cls] = 1.0
    return logits, clip_logits, targets


def _worker(rank, port, out_dir):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        logits, clip_logits, targets = global_batch()
        mine = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        ids = torch.arange(WORLD * PER_RANK)[mine]
        config = ReweightConfig(t_h=0.25, t_n=0.25, warmup_epochs=0)
        _, batch_info = ReweightedLoss(config, 12)(logits[mine], clip_logits[mine], targets[mine], ids, 0)
        epoch_fn = ReweightedLoss(ReweightConfig(t_h=0.25, t_n=0.25, warmup_epochs=0, mode="epoch"), 12)
        epoch_fn(logits[mine], clip_logits[mine], targets[mine], ids, 0)
        epoch_fn.end_epoch()
        torch.save({"batch": batch_info["kinds"], "ce": batch_info["ce"], "epoch": epoch_fn.previous_kinds},
                   f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_ranks_get_their_slice_of_the_global_partition(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    ce = torch.cat([r["ce"] for r in results])
    expected = partition(torch.tensor(AGREEMENT), ce, t_h=0.25, t_n=0.25)
    # 3 hard of 12 (ranks 6, 8 and one 0.5 of rank 1), 3 noisy of 12 (the 1.0s of rank 0 and 1).
    assert (expected == 1).sum() == 3 and (expected == 2).sum() == 3
    assert torch.equal(torch.cat([r["batch"] for r in results]), expected)
    # Epoch mode: every rank saw every rank's statistics and ranked all 12 the same way.
    for r in results:
        assert torch.equal(r["epoch"], expected)
    # A per-rank ranking would have given rank 0 hard samples: the global one gives none.
    assert not (expected[:PER_RANK] == 1).any()
