"""The one base of kvlab's refusals that are not bad input: an operation that could not be done, said in one line.

Its own module, imported by nothing heavy, so that the CLI can catch every such refusal (``error: <reason>``,
exit 1) without importing the database, the Data Factory or the emulator's control code to name their classes.
"""


class Refusal(RuntimeError):
    """A one-line reason an operation could not be done (the emulator, the database, a Key Vault reference)."""
