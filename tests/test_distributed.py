"""Data-parallel training: two processes on CPU with gloo over loopback, spawned by the test."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp

from pixelcnn.errors import ConfigError
from pixelcnn.store.checkpoint import load_checkpoint
from pixelcnn.store.files import atomic_write
from pixelcnn.store.data import synthetic_colored_mnist
from pixelcnn.store.metrics import read_events
from pixelcnn.models import PixelCNNConfig
from pixelcnn.models import random_model
from pixelcnn.training.config import TrainConfig
from pixelcnn.training.state import check_run_dir
from pixelcnn.training.trainer import train

TINY = PixelCNNConfig(hidden=16, n_blocks=2)
CONFIG = TrainConfig(steps=5, batch_size=32, eval_every=5, checkpoint_seconds=1e9, device="cpu", lr=3e-3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, run_dir: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    data = synthetic_colored_mnist(n_train=160, n_val=16, n_test=16, seed=0)
    summary = train(run_dir, TINY, CONFIG, data)
    with open(f"{out}/summary{rank}.json", "w") as f:
        json.dump(summary, f)


def test_two_processes_equal_one_with_the_same_global_batch(tmp_path):
    context = mp.start_processes(_worker, args=(2, free_port(), str(tmp_path / "ddp"), str(tmp_path)), nprocs=2,
                                 join=False, start_method="spawn")
    deadline = time.monotonic() + 300
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two training processes did not finish within 300 s")
    summaries = [json.loads((tmp_path / f"summary{r}.json").read_text()) for r in range(2)]
    assert all(s["status"] == "finished" and s["step"] == 5 for s in summaries)
    checksums = summaries[0]["replica_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]  # identical weights on both ranks

    single = train(tmp_path / "single", TINY, CONFIG, synthetic_colored_mnist(n_train=160, n_val=16, n_test=16))
    assert single["status"] == "finished"
    a = load_checkpoint(tmp_path / "ddp").model.state_dict()
    b = load_checkpoint(tmp_path / "single").model.state_dict()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-5, worst
    initial = random_model(TINY, seed=CONFIG.seed).state_dict()
    assert max((a[k] - initial[k]).abs().max().item() for k in a) > 1e-3  # it did train
    ddp_events = read_events(tmp_path / "ddp" / "metrics.jsonl")
    single_events = read_events(tmp_path / "single" / "metrics.jsonl")
    ddp_loss = [e["bits_per_dim"] for e in ddp_events if e["event"] == "train"]
    single_loss = [e["bits_per_dim"] for e in single_events if e["event"] == "train"]
    assert ddp_loss == pytest.approx(single_loss, abs=1e-5)
    assert not (tmp_path / "ddp" / "checkpoint.pt.tmp").exists()


@pytest.mark.slow
def test_torchrun_command(tmp_path, mnist_dir):
    """The README's command: torchrun --nproc_per_node=2 -m pixelcnn train --preset tiny --steps 20 --out RUN."""
    env = dict(os.environ, PIXELCNN_DATA_DIR=str(mnist_dir), OMP_NUM_THREADS="1")
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           f"--master_port={free_port()}", "-m", "pixelcnn", "train", "--preset", "tiny",
                           "--steps", "20", "--out", str(run)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("test bits/dim:") == 1  # rank 0 alone reports
    events = read_events(run / "metrics.jsonl")
    assert [e["step"] for e in events if e["event"] == "train"] == list(range(1, 21))
    end = events[-1]
    assert end["status"] == "finished" and end["replica_checksums"][0] == end["replica_checksums"][1]
    assert load_checkpoint(run).train["step"] == 20


def test_a_rank_that_checks_the_folder_while_rank_0_writes_its_job_file_sees_a_run(tmp_path):
    """Under torchrun rank 1 checks the folder while rank 0 claims it: at that moment the folder holds only
    atomic_write's temporary file. That is a run being started, not foreign files (a flaky refusal in CI)."""
    run = tmp_path / "run"
    run.mkdir()
    seen = []

    def write_while_checking(f):
        f.write(b"{}")
        assert [p.name for p in run.iterdir()] != ["job.json"]  # mid-write: the temporary file alone
        check_run_dir(run, resume=False)
        seen.append(True)

    atomic_write(run / "job.json", write_while_checking)
    assert seen == [True]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / ".notes.abc.tmp").write_text("x")  # a temporary file, but of no run's file
    with pytest.raises(ConfigError, match="holds other files and no run"):
        check_run_dir(foreign, resume=False)
