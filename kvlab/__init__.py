"""kvlab: a hands-on workbook for Azure Key Vault, with a bundled Key Vault emulator."""

__version__ = "0.1.0"


def connect(*args, **kwargs):
    """Start or attach to the emulator and prepare this Python process (see `kvlab.connect`)."""
    from .connect import connect as _connect

    return _connect(*args, **kwargs)
