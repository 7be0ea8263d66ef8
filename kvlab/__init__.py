"""kvlab: a hands-on workbook for Azure Key Vault, with a bundled Key Vault emulator.

The notebook side (`connect`, `start_lesson`, `progress`) loads on first use (PEP 562), so a process that
imports only the emulator (`python -m kvlab.emulator`) never loads it (issue #14).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "connect":
        from .connection import connect

        return connect
    if name == "start_lesson":
        from .lesson import start_lesson

        return start_lesson
    raise AttributeError(f"module 'kvlab' has no attribute {name!r}")


def progress(state_dir=None):
    """Your progress through every lesson: a dashboard in JupyterLab, a table elsewhere."""
    from .tracker import show

    return show(state_dir)


__all__ = ["__version__", "connect", "progress", "start_lesson"]
