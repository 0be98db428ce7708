"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""


class SegrtError(Exception):
    """Base class: the message names the file or argument at fault and the fix."""


class ConfigError(SegrtError):
    """A YAML config has an unknown key, a wrong type or a bad value."""


class DataError(SegrtError):
    """A dataset, video or image is missing, unreadable or not what it should be."""


class ModelError(SegrtError):
    """A model file or its manifest is missing, corrupt or does not match."""
