"""The teaching views' engine: per-pixel bits and predictions, receptive fields, the posterior over labels,
the digit score, the codec, and a shipped model's measured results."""
