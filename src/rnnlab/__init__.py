"""rnnlab: learn and compare recurrent networks on images read as sequences."""

from rnnlab.errors import CheckpointError, DataError, RnnlabError

__version__ = "0.1.0"
__all__ = ["RnnlabError", "DataError", "CheckpointError", "__version__"]
