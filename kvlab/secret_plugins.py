"""detect-secrets plugins for Azure formats that detect-secrets 1.5 misses by itself.

Measured with detect-secrets 1.5.0 and its default plugins (tests/test_leaks.py
keeps the measurement honest): it finds a storage account key
(``AccountKey=``) and a quoted ``password = "..."`` assignment, but not

- the password inside a SQL/ODBC/JDBC connection string (``...;Password=...;``),
- the signature of a SAS token (``...&sig=...``), which is all an attacker needs,
- a Databricks personal access token (``dapi`` + 32 hex digits).

detect-secrets loads this file by path (``{"name": ..., "path": "file://..."}``
in ``plugins_used``), as a module of its own: so it imports nothing from kvlab.
Its filters still apply to what these plugins find, so a templated value such
as ``Password={password}`` or a line marked ``# pragma: allowlist secret`` is
not reported.
"""

import re

from detect_secrets.plugins.base import RegexBasedDetector


class ConnectionStringPasswordDetector(RegexBasedDetector):
    """The password of a connection string: ``Password=`` or ``Pwd=`` as one of its ``;``-separated parts.

    Only in connection-string shape (after a ``;``, or first and followed by
    one), so that Python's ``connect(password=pw)`` is no finding.
    """

    secret_type = "Connection string password"

    # a value in braces is taken whole: `{password}` and `{os.environ['PW']}` are templates, which
    # detect-secrets' is_templated_secret filter drops
    _value = r"(\{[^}\n]*\}|[^;\s\"']+)"
    denylist = [
        re.compile(r"(?i);\s*(?:password|pwd)\s*=\s*" + _value),
        re.compile(r"(?i)(?:^|[\"'])\s*(?:password|pwd)\s*=\s*" + _value + ";"),
    ]


class AzureSasSignatureDetector(RegexBasedDetector):
    """The ``sig=`` of a shared access signature (a SAS URL or token, or a ``SharedAccessSignature=``)."""

    secret_type = "Azure SAS token signature"

    denylist = [
        re.compile(r"(?:^|[?&;\s\"'])sig=([A-Za-z0-9%+/=]{20,})"),
    ]


class DatabricksTokenDetector(RegexBasedDetector):
    """A Databricks personal access token: ``dapi`` and 32 hexadecimal digits (sometimes ``-2`` after)."""

    secret_type = "Databricks personal access token"

    denylist = [
        re.compile(r"(?<![A-Za-z0-9])(dapi[0-9a-f]{32})(?:-\d+)?(?![0-9a-zA-Z])"),
    ]


def is_indirect_reference(secret: str, line: str, plugin) -> bool:
    """detect-secrets' ``is_indirect_reference`` filter, kept for the guessing detectors only.

    That filter drops every line shaped like ``x = call(...)``, to spare the
    keyword and entropy detectors from ``password = get_secret()``. On its own
    it also hides ``conn = pyodbc.connect("...;Pwd=...;")`` and
    ``df = spark.read.load("...&sig=...")``, the very lines that leak in data
    pipelines. A format-specific (regex) detector is not guessing, so the
    filter does not apply to it (detect-secrets' own ``is_likely_id_string``
    draws the same line). ``secret`` is unused: taking it makes detect-secrets
    run this filter once per finding, when ``plugin`` is known.
    """
    from detect_secrets.filters.heuristic import is_indirect_reference as guessed_reference

    return not isinstance(plugin, RegexBasedDetector) and guessed_reference(line)
