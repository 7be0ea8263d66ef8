"""kvlab: a hands-on workbook for Azure Key Vault, with a bundled Key Vault emulator."""

__version__ = "0.1.0"

# Imported eagerly, after __version__ (which the emulator imports): importing the
# submodule `kvlab.connect` rebinds the package attribute `connect` to that module,
# so a lazy wrapper function here worked once and then made a second
# `kvlab.connect()` (a re-run notebook cell) fail with "'module' object is not callable".
from .connect import connect  # noqa: E402

__all__ = ["__version__", "connect"]
