"""Databricks' ``dbutils.secrets`` in a notebook, with the output redaction Databricks applies.

    from kvlab.databricks import dbutils

    password = dbutils.secrets.get(scope="kv-scope", key="sql-db-password")
    print(password)        # [REDACTED]

`dbutils` is the one Databricks notebooks have (``get``, ``getBytes``,
``list``, ``listScopes``, ``help``), built on the official ``databricks-sdk``'s
own dbutils (``WorkspaceClient().dbutils``), so it talks to whatever workspace
``DATABRICKS_HOST`` and ``DATABRICKS_TOKEN`` name: the emulator's once
``kvlab.connect()`` (or a lesson's set-up) ran, or a real one.

Redaction, as Databricks does it: in an IPython kernel, every value fetched
through ``dbutils.secrets`` is replaced by ``[REDACTED]`` in whatever the
kernel sends to the notebook: printed and logged text, a cell's result, rich
displays, error messages and tracebacks. Only the exact value is caught: a
value reversed, sliced or encoded goes out as it is. That is Databricks'
behaviour too, and why redaction is a safety net, not access control: whoever
can run code with a scope's READ permission can read every secret in it.

The redaction sits on the kernel's outgoing messages (its ``Session.send``),
the one place every output passes; nothing in the SDK is changed.
"""

from __future__ import annotations

import builtins
import os
from typing import Any

from .stubs import LearnerError

REDACTED = "[REDACTED]"
OUTPUTS = ("stream", "display_data", "update_display_data", "execute_result", "error")  # messages that reach the page


class Redactor:
    """The values fetched in this kernel, and the rewriting of outgoing messages that hides them."""

    def __init__(self) -> None:
        self.values: set[str] = set()
        self.installed = False

    def add(self, value: str | bytes) -> None:
        if isinstance(value, bytes):
            try:
                value = value.decode()
            except UnicodeDecodeError:
                return  # binary values never reach the page as text
        if value:
            self.values.add(value)

    def redact(self, data: Any) -> Any:
        """``data`` (str, or lists and dicts of them) with every fetched value replaced, longest first."""
        if isinstance(data, str):
            for value in sorted(self.values, key=len, reverse=True):
                if value in data:
                    data = data.replace(value, REDACTED)
            return data
        if isinstance(data, dict):
            return {key: self.redact(item) for key, item in data.items()}
        if isinstance(data, list):
            return [self.redact(item) for item in data]
        return data

    def install(self) -> bool:
        """Rewrite this kernel's outgoing output messages (False outside an IPython kernel)."""
        if self.installed:
            return True
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
        session = getattr(getattr(shell, "kernel", None), "session", None)
        if session is None:
            return False
        original = session.send

        def send(stream, msg_or_type, content=None, *args, **kwargs):
            if self.values:
                if isinstance(msg_or_type, dict):  # a message built beforehand (printed text)
                    if msg_or_type.get("header", {}).get("msg_type") in OUTPUTS:
                        msg_or_type = {**msg_or_type, "content": self.redact(msg_or_type.get("content"))}
                elif msg_or_type in OUTPUTS:
                    content = self.redact(content)
            return original(stream, msg_or_type, content, *args, **kwargs)

        session.send = send
        self.installed = True
        return True


REDACTOR = Redactor()


class Secrets:
    """``dbutils.secrets``: Databricks' interface, on databricks-sdk's own dbutils; every value read is redacted."""

    def __init__(self, redactor: Redactor = REDACTOR):
        self._redactor = redactor
        self._sdk = None

    def _secrets(self):
        if self._sdk is None:
            if not (os.environ.get("DATABRICKS_HOST") and os.environ.get("DATABRICKS_TOKEN")):
                raise WorkspaceUnknown(
                    "no Databricks workspace to talk to: run the lesson's set-up cell (kvlab.start_lesson) first, "
                    "or set DATABRICKS_HOST and DATABRICKS_TOKEN"
                )
            from databricks.sdk import WorkspaceClient

            self._sdk = WorkspaceClient().dbutils.secrets
            self._redactor.install()
        return self._sdk

    def get(self, scope: str, key: str) -> str:
        """The secret's value as a string (shown as [REDACTED] in every output of this notebook)."""
        value = self._secrets().get(scope=scope, key=key)
        self._redactor.add(value)
        return value

    def getBytes(self, scope: str, key: str) -> bytes:  # noqa: N802 - Databricks' name
        """The secret's value as bytes (redacted too, where it is text)."""
        value = self._secrets().getBytes(scope=scope, key=key)
        self._redactor.add(value)
        return value

    def list(self, scope: str) -> builtins.list:
        """The secrets of a scope: SecretMetadata(key=...), never values."""
        return self._secrets().list(scope)

    def listScopes(self) -> builtins.list:  # noqa: N802 - Databricks' name
        """The workspace's scopes: SecretScope(name=...)."""
        return self._secrets().listScopes()

    def help(self) -> None:
        print(
            "dbutils.secrets provides utilities for working with secrets.\n\n"
            "get(scope: String, key: String): String -> Gets the string representation of a secret value\n"
            "getBytes(scope: String, key: String): byte[] -> Gets the bytes representation of a secret value\n"
            "list(scope: String): Seq -> Lists secret metadata for secrets within a scope\n"
            "listScopes: Seq -> Lists secret scopes\n\n"
            "Values read here show as [REDACTED] in this notebook's outputs (exact matches only)."
        )


class WorkspaceUnknown(LearnerError):
    """No DATABRICKS_HOST/DATABRICKS_TOKEN yet (shown as one line in a lesson's kernel)."""


class DBUtils:
    """The part of Databricks' ``dbutils`` that this course uses: ``secrets``."""

    def __init__(self) -> None:
        self.secrets = Secrets()

    def help(self) -> None:
        print("dbutils.secrets: Databricks secret scopes (dbutils.secrets.help() for details)")


dbutils = DBUtils()
