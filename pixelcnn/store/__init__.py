"""Files read as untrusted and written atomically: checkpoints, metrics, the data, run folders."""
