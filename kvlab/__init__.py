"""kvlab: a hands-on workbook for Azure Key Vault, with a bundled Key Vault emulator."""

__version__ = "0.1.0"

# Imported eagerly, after __version__ (which the emulator imports). A package
# attribute must never share its name with a submodule: importing the submodule
# would rebind it (a lazy `connect` wrapper once turned into the module itself).
from .connect import connect  # noqa: E402
from .lesson import start_lesson  # noqa: E402


def progress(state_dir=None):
    """Your progress through every lesson: a dashboard in JupyterLab, a table elsewhere."""
    from .tracker import show

    return show(state_dir)


__all__ = ["__version__", "connect", "progress", "start_lesson"]
