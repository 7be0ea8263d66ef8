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

It also holds detect-secrets filters (``{"path": "kvlab.secret_plugins.<name>"}``
in ``filters_used``) for what the lessons teach: Key Vault code is full of the
*names* of secrets (``SECRET_NAME = "sql-db-password"``), their version ids and
the names of roles, which detect-secrets' guessing detectors (Secret Keyword,
the high-entropy strings) report as secrets. The filters never apply to a
format-specific (regex) detector: a token in Databricks' format is a token
whatever it sits next to.
"""

import re

from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector


class ConnectionStringPasswordDetector(RegexBasedDetector):
    """The password of a connection string: ``Password=`` or ``Pwd=`` as one of its ``;``-separated parts.

    Only in connection-string shape (after a ``;``, or first and followed by
    one), so that Python's ``connect(password=pw)`` is no finding.
    """

    secret_type = "Connection string password"

    # a value in braces is taken whole: `{password}` and `{os.environ['PW']}` are templates, which
    # detect-secrets' is_templated_secret filter drops; a Data Factory expression (`@{linkedService().pw}`,
    # `@pipeline().parameters.pw`) is filled in at run time, so no value at all
    _value = r"(?!@)(\{[^}\n]*\}|[^;\s\"']+)"
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


def _guessed(plugin: BasePlugin) -> bool:
    """Whether ``plugin`` guesses (keywords, entropy) rather than knows a format: only guesses are filtered."""
    return not isinstance(plugin, RegexBasedDetector)


def _before(secret: str, line: str) -> str | None:
    """The line up to where ``secret`` starts (None if it is not on the line, after a transformer rewrote it)."""
    at = line.find(secret)
    return None if at < 0 else line[:at]


# An identifier that *refers to* a secret, as in `secret_name =`, `secretName ==`, `PASSWORD_ENV:` or `secret_type =`.
# detect-secrets' is_likely_id_string does the same for `_id` only.
_SUFFIXES = "names?|ids?|types?|kinds?|versions?|labels?|urls?|uris?|paths?|files?|envs?|vars?"
_REFERENCE = re.compile(
    rf"(?:[_.-](?i:{_SUFFIXES})|(?<=[a-z])(?:{_SUFFIXES.title()}|IDs?|URLs?|URIs?))"  # snake_case, kebab, camelCase
    r"[\]\"'`]*\s*(?:={1,3}|!==?|:=?|=>)\s*@?[\"'`]?$"  # closing quotes/brackets, the operator, an opening quote
)


def names_a_secret(secret: str, line: str, plugin: BasePlugin) -> bool:
    """A value given to an identifier that names, numbers or types a secret: ``secret_name = "..."``.

    The Key Vault lessons write ``SECRET_NAME = "sql-db-password"`` and
    ``if r["secretName"] == "...":`` on every page; the keyword detector reads
    the ``secret`` in the identifier and reports the name as a secret. The
    identifier's last word (name, id, type, version, env...) says it holds no
    value, as ``is_likely_id_string`` reads ``_id``.
    """
    before = _before(secret, line)
    return _guessed(plugin) and before is not None and bool(_REFERENCE.search(before))


# What a secret's name looks like in Key Vault (1-127 of [0-9a-zA-Z-]), by convention lowercase words
# that end with what the secret is: sql-db-password, resend-api-key, adls-storage-key, databricks-token.
_KINDS = ("password|passwd|pwd|secret|key|apikey|token|pat|sas|sig|signature|cert|certificate|credential|"
          "credentials|creds?|conn|connstr|conn-str|connection-string")
_AZURE_NAMES = (
    re.compile(rf"[a-z0-9]+(?:-[a-z0-9]+)*-(?:{_KINDS})"),  # a Key Vault secret name
    re.compile(r"Microsoft\.[A-Za-z]+(?:/[A-Za-z*]+)+"),  # an RBAC operation: Microsoft.KeyVault/.../getSecret/action
    re.compile(r"Key Vault(?: [A-Z][a-z]+)+"),  # a built-in role: Key Vault Secrets Officer
)


def is_azure_name(secret: str, plugin: BasePlugin) -> bool:
    """A value shaped like the name of a Key Vault secret, an RBAC operation or a Key Vault role.

    ``DB_SECRET = "sql-db-password"`` holds the name under which the
    password is kept, not the password. A name must end with the kind of
    secret it names (``-password``, ``-key``, ``-token``...): a passphrase such
    as ``correct-horse-battery-staple`` is still reported.
    """
    return _guessed(plugin) and any(shape.fullmatch(secret) for shape in _AZURE_NAMES)


_VERSION_ID = re.compile(r"[0-9a-f]{32}")  # a Key Vault object version: 32 lowercase hex digits
_AFTER_VERSION = re.compile(r"(?i)version(?!.*(?:key|secret|passw|pwd|token|sig|credential))[^\n]*$")
_IN_IDENTIFIER = re.compile(r"/(?:secrets|keys|certificates)/[0-9A-Za-z-]{1,127}/$")


def is_key_vault_version_id(secret: str, line: str, plugin: BasePlugin) -> bool:
    """A Key Vault version id: 32 hex digits after the word "version", or in a secret's identifier URL.

    ``print([v.version for v in versions])`` puts ids in a notebook's output
    that the hex-entropy detector reports. Some API keys are 32 hex digits too,
    so the id must follow "version" with no credential word in between (not
    ``api_version="2024-02-01", api_key="..."``), or end an identifier such as
    ``https://kv.vault.azure.net/secrets/sql-db-password/<version>``.
    """
    before = _before(secret, line)
    if not _guessed(plugin) or before is None or not _VERSION_ID.fullmatch(secret):
        return False
    return bool(_AFTER_VERSION.search(before) or _IN_IDENTIFIER.search(before))
