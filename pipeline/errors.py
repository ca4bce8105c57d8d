"""Errors the CLI reports as one clear line instead of a traceback."""


class PipelineError(RuntimeError):
    """A problem with the user's input or environment: the message says what and where."""


class ConfigError(PipelineError):
    """An invalid, missing or unknown configuration value."""


class StageError(PipelineError):
    """A stage cannot run because its inputs are missing or invalid."""
