"""The benchmarks' measuring functions run (tiny sizes; the figures themselves are for people)."""

from pixelcnn import bench


def test_the_measuring_functions_run():
    assert bench._time_sampling("cached", rows=1, n=2)["seconds"] > 0
    assert bench._time_sampling("naive", rows=1, n=1)["seconds"] > 0
    assert bench._time_training("tiny", "reference", batch=4, steps=1, settings=False) > 0
    assert bench._time_training("tiny", "ours", batch=4, steps=1) > 0
    assert bench._time_training("tiny", "ours", batch=4, steps=1, amp=True) > 0
    assert bench._time_device("tiny", batch=4, steps=1)["images_per_s"] > 0
    assert bench._time_data_parallel("tiny", batch=4, steps=1) > 0  # one process, outside torchrun
    assert bench._time_receptive(1, "gated") > 0
    assert all(seconds > 0 for seconds in bench._time_codec("tiny", 1, 1).values())
    assert bench.training_flops_per_image("paper") > bench.training_flops_per_image("tiny") > 0


def test_the_runs_benchmark_runs(capsys):
    bench.bench_runs(folders=3)
    assert "Models table with 3 run folders" in capsys.readouterr().out
