"""Training: settings, steps and schedule, recoloring, evaluation, the run and its loop, averaging,
distributed, speed."""
