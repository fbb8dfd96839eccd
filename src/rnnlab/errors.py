"""The one exception for mistakes a user can make (bad flag, bad file, missing data).

The CLI prints its message on one line and exits with code 2; bugs still raise normally.
"""


class RnnlabError(Exception):
    """Something the user handed us is wrong; the message says what and what to do."""


class DataError(RnnlabError):
    """A data file is missing, corrupt or inconsistent."""


class CheckpointError(RnnlabError):
    """A checkpoint or run folder cannot be used."""
