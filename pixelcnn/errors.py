"""The one exception type the CLI and the dashboard turn into a one-line message."""


class PixelCNNError(Exception):
    """A problem the user can fix; ``str(err)`` is one line that says what to do."""


class DataError(PixelCNNError):
    """Missing, corrupt or foreign data files."""


class CheckpointError(PixelCNNError):
    """A checkpoint that cannot be trusted or does not fit."""


class ConfigError(PixelCNNError):
    """A hyperparameter outside its limits."""


class ModelError(PixelCNNError):
    """A model that cannot be served: too large for this machine, shaped for other data, or numerically broken."""
