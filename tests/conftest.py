import os
from pathlib import Path

import numpy as np
import pytest

from pixelcnn.store.data import synthetic_colored_mnist

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true",
                     help="also run the tests marked slow (real MNIST, browser, longer runs)")


def pytest_collection_modifyitems(config, items):
    """Without --slow (and without an explicit -m), slow tests are deselected, not skipped."""
    if config.getoption("--slow") or config.getoption("-m"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: uses the real MNIST files or takes more than a few seconds")
    config.addinivalue_line("markers", "e2e: drives the dashboard in a real browser")


@pytest.fixture(autouse=True)
def process_settings_restored():
    """Tests that run an entry point in this process (``main([...])``) get its process-wide settings
    (one thread, denormals flushed); the next test starts from PyTorch's defaults again. Hypothesis
    cannot draw floats at all while denormals are treated as zero."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_flush_denormal(False)
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder with the four real MNIST files: $PIXELCNN_DATA_DIR, else ../shared/data/mnist."""
    candidates = [os.environ.get("PIXELCNN_DATA_DIR"), ROOT.parent / "shared" / "data" / "mnist"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").exists():
            return Path(candidate)
    pytest.fail("real MNIST not found: set PIXELCNN_DATA_DIR to the folder holding the four IDX files")


@pytest.fixture(scope="session")
def small_data() -> dict[str, np.ndarray]:
    return synthetic_colored_mnist(n_train=192, n_val=32, n_test=32, seed=0)
