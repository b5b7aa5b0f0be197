"""Training: settings, steps and schedule, evaluation, the run and its loop, averaging, distributed, speed."""
