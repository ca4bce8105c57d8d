"""Errors the CLI reports as one clear line instead of a traceback."""

import errno

DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)  # a file system that takes no more writes


class PipelineError(RuntimeError):
    """A problem with the user's input or environment: the message says what and where."""


class ConfigError(PipelineError, ValueError):
    """An invalid, missing or unknown configuration value."""


class StageError(PipelineError):
    """A stage cannot run because its inputs are missing or invalid."""


class DiskFullError(PipelineError):
    """The run folder's file system refuses writes (full, over quota, read-only)."""


class RunBusyError(PipelineError):
    """Another launch is writing the run folder, or its SLURM jobs are still queued or running."""


class Interrupted(PipelineError):
    """A launch stopped on a signal after finishing the item in progress."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum
