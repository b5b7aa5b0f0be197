"""A presenter's laptop, reproduced: CPU contention for measuring interactive work under load.

While a lecture runs the dashboard, the same cores carry a training run (started
by the dashboard: niced, with passive OpenMP waits) and ordinary
normal-priority work (a browser, a screen share). :func:`busy_processes` and
:func:`training_load` start that load; every process they start ends by itself
after a bounded time, and is killed when the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from typing import Iterator

from .serve.jobs import background_training_environment, lower_priority

SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
    for process in processes:
        process.wait()


@contextlib.contextmanager
def busy_processes(count: int = 2, seconds: float = 900) -> Iterator[list[subprocess.Popen]]:
    """``count`` normal-priority processes that each keep one core busy, for at most ``seconds``."""
    processes = [subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=float(seconds))],
                                  start_new_session=True)  # each an application of its own, as on a laptop
                 for _ in range(count)]
    try:
        yield processes
    finally:
        _stop(processes)


@contextlib.contextmanager
def training_load(preset: str = "live", seconds: float = 900) -> Iterator[subprocess.Popen]:
    """Training steps of ``preset`` with its training settings (batch, bfloat16) on random batches, started
    like a dashboard run (niced, passive waits), for at most ``seconds``: the compute of a real run without
    needing the data. The default is the Train page's default, the run a lecture starts."""
    command = [sys.executable, "-m", "pixelcnn.contention", preset, str(float(seconds))]
    process = subprocess.Popen(command, env=background_training_environment(), start_new_session=True,
                               preexec_fn=lower_priority)
    time.sleep(3.0)  # past its imports: the load is on when the block starts
    try:
        yield process
    finally:
        _stop([process])


def _train_forever(preset: str, seconds: float) -> None:
    import torch

    from .models import PRESETS, build_model
    from .runtime import micro_batch_size, prepare_cpu
    from .training.speed import random_images
    from .training.step import make_optimizer, train_step
    from .training.config import preset_train_config

    prepare_cpu()
    config, settings = PRESETS[preset], preset_train_config(preset)
    model = build_model(config)
    device = torch.device("cpu")
    optimizer = make_optimizer(model, settings.lr, device)
    batch = random_images(config, settings.batch_size)
    micro = micro_batch_size(settings.batch_size, config.hidden, config.image_size)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        train_step(model, optimizer, batch, micro, device, amp=settings.amp)


if __name__ == "__main__":
    _train_forever(sys.argv[1], float(sys.argv[2]))
