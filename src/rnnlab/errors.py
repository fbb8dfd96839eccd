"""The one exception for mistakes a user can make (bad flag, bad file, missing data).

The CLI prints its message on one line and exits with code 2; bugs still raise normally.
"""


class RnnlabError(Exception):
    """Something the user handed us is wrong; the message says what and what to do."""


class DataError(RnnlabError):
    """A data file is missing, corrupt or inconsistent."""


class CheckpointError(RnnlabError):
    """A checkpoint or run folder cannot be used."""


class WriteFailed(RnnlabError):
    """A file could not be written (a full or read-only disk); nothing was half-written. `reason` says which file
    and why; a run that can be continued says so with `resumable`, since running the command again would find
    the folder taken."""

    def __init__(self, reason: str, full: bool, then: str | None = None):
        self.reason, self.full = reason, full
        if then is None:
            fix = "free some space there and run again" if full else "choose a folder you can write to"
        else:
            fix = f"{'free some space there' if full else 'make the folder writable'}, then continue with: {then}"
        super().__init__(f"{reason}; {fix} (nothing was half-written)")

    def resumable(self, command: str) -> "WriteFailed":
        return WriteFailed(self.reason, self.full, command)
