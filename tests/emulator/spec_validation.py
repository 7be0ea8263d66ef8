"""Check emulator responses against the official Key Vault secrets spec, strictly.

Shared by `test_spec_conformance.py` (raw HTTPS and SDK traffic) and
`test_schemathesis.py` (fuzzing). Swagger 2.0 schemas are JSON Schema Draft 4
plus a few extensions; `strict_spec` turns the spec into what the checks use:

* every object schema that does not say otherwise gets
  ``additionalProperties: false``, so an extra or misspelled field fails (the
  spec is the complete list of what the service sends);
* ``x-nullable: true`` (only `Error` has it) admits ``null``; nothing else is
  nullable, as in Swagger 2.0;
* ``nextLink`` of the list results also admits ``null`` -- see `_NULLABLE_NEXT_LINK`.

`SpecValidator.check` finds the spec operation of a request (method and path),
picks the response schema for the status (``responses[str(status)]``, else
``default`` -- but a 2xx the spec does not list fails) and validates the body,
with formats (``unixtime``, ``int32``, ``base64url``) checked too. Paths match
as the service routes them: a trailing slash is allowed, and the secret version
may be empty or left out (the spec: "This URI fragment is optional"), which is
how the SDK asks for the latest version (``GET /secrets/{name}/``). A request
that is no operation of the spec may only fail, with a KeyVaultError body.
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_URI = "https://kvlab.invalid/keyvault/secrets.json"
HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")

# The real service ends the last page of every list with an explicit
# ``"nextLink": null`` (recorded responses, /work/notes/kv-errors.md section 19:
# "The last page has "nextLink":null, which is present as an explicit null"; also
# section 7: versions of an unknown secret are ``{"value":[],"nextLink":null}``).
# The spec types nextLink as a plain string and Swagger 2.0 has no nullability
# without x-nullable, so a faithful reading would reject what Key Vault itself
# sends and what the SDK's pager expects. We admit null for exactly these two
# properties and nowhere else.
_NULLABLE_NEXT_LINK = ("SecretListResult", "DeletedSecretListResult")

_UNIXTIME_MAX = 253402300800  # 10000-01-01: the service's dates are seconds, years 1970..9999
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def load_spec(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _strictify(node: object) -> object:
    if isinstance(node, list):
        return [_strictify(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strictify(value) for key, value in node.items()}
    if "$ref" in out:
        return out  # Draft 4 ignores a $ref's siblings; the target is made strict itself
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if out.get("x-nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def strict_spec(spec: dict) -> dict:
    """A copy of the spec whose schemas reject anything the spec does not name."""
    strict = copy.deepcopy(spec)
    strict["definitions"] = _strictify(strict["definitions"])
    for name in _NULLABLE_NEXT_LINK:
        strict["definitions"][name]["properties"]["nextLink"]["type"] = ["string", "null"]
    return strict


def format_checker() -> FormatChecker:
    """Checks for the spec's formats that JSON Schema does not know (no others are used in responses)."""
    checker = FormatChecker(formats=())

    @checker.checks("unixtime")
    def unixtime(value: object) -> bool:
        return not isinstance(value, int) or isinstance(value, bool) or 0 <= value < _UNIXTIME_MAX

    @checker.checks("int32")
    def int32(value: object) -> bool:
        return not isinstance(value, int) or -(2**31) <= value < 2**31

    @checker.checks("base64url")
    def base64url(value: object) -> bool:
        return not isinstance(value, str) or bool(_BASE64URL.match(value))

    return checker


@dataclass(frozen=True)
class SpecOperation:
    operation_id: str
    method: str
    template: str
    pattern: re.Pattern
    literal_chars: int
    responses: dict


class SpecValidator:
    """Validates one response at a time against the spec operation its request names."""

    def __init__(self, spec: dict):
        self.spec = strict_spec(spec)
        self.registry = Registry().with_resource(SPEC_URI, Resource.from_contents(self.spec, DRAFT4))
        self.formats = format_checker()
        ops = []
        for template, item in self.spec["paths"].items():
            for method, op in item.items():
                if method not in HTTP_METHODS:
                    continue
                # a path parameter is one non-empty segment; the version may be empty
                # (the SDK asks for the latest version as /secrets/{name}/)
                regex = re.escape(template).replace(r"\{secret\-version\}", "[^/]*")
                regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", regex)
                if template.endswith("/{secret-version}"):
                    # "This URI fragment is optional. If not specified, the latest version
                    # of the secret is returned." (the spec, on secret-version)
                    regex = regex[: -len("/[^/]*")] + "(?:/[^/]*)?"
                literal = len(re.sub(r"\{[^}]+\}", "", template))
                ops.append(SpecOperation(
                    op["operationId"], method.upper(), template, re.compile(f"^{regex}/?$"),
                    literal, op["responses"],
                ))
        # a literal segment beats a parameter: /secrets/{n}/versions before /secrets/{n}/{v}
        self.operations = sorted(ops, key=lambda o: -o.literal_chars)

    @property
    def operation_ids(self) -> set[str]:
        return {op.operation_id for op in self.operations}

    def find(self, method: str, url: str) -> SpecOperation | None:
        path = urlsplit(url).path or "/"
        for op in self.operations:
            if op.method == method.upper() and op.pattern.match(path):
                return op
        return None

    def operation(self, method: str, url: str) -> SpecOperation:
        op = self.find(method, url)
        if op is None:
            raise AssertionError(f"{method} {urlsplit(url).path} is not an operation of the spec")
        return op

    def schema_for(self, op: SpecOperation, status: int) -> dict | None:
        """The response schema the spec gives ``op`` for ``status`` (None: no body)."""
        response = op.responses.get(str(status))
        if response is None:
            if 200 <= status < 300:
                raise AssertionError(
                    f"{op.operation_id} answered {status}; the spec documents success only as "
                    f"{sorted(k for k in op.responses if k != 'default')}"
                )
            response = op.responses["default"]
        return response.get("schema")

    def errors(self, schema: dict, body: object) -> list[str]:
        wrapped = json.loads(json.dumps(schema).replace('"#/', f'"{SPEC_URI}#/'))
        validator = Draft4Validator(wrapped, registry=self.registry, format_checker=self.formats)
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}"
            for e in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
        ]

    def check(
        self, method: str, url: str, status: int, content_type: str | None, body: bytes | str
    ) -> str:
        """Assert that one response conforms; return the operationId it was checked as.

        A request that is no operation of the spec (an unknown path, an
        undeclared method) may only fail, with a KeyVaultError body: the shape
        every error of the service takes.
        """
        op = self.find(method, url)
        if op is None:
            assert status >= 400, f"{method} {url} is no operation of the spec, yet answered {status}"
            schema: dict | None = {"$ref": "#/definitions/KeyVaultError"}
            name = "KeyVaultError"
        else:
            schema = self.schema_for(op, status)
            name = op.operation_id
        raw = body.encode() if isinstance(body, str) else (body or b"")
        where = f"{name} {method} {url} -> {status}"
        if schema is None:
            assert raw == b"", f"{where}: the spec gives no body, got {raw[:200]!r}"
            return name
        assert (content_type or "").split(";")[0].strip().lower() == "application/json", (
            f"{where}: Content-Type {content_type!r}, the spec produces application/json"
        )
        try:
            data = json.loads(raw)
        except ValueError:
            raise AssertionError(f"{where}: body is not JSON: {raw[:200]!r}") from None
        problems = self.errors(schema, data)
        assert not problems, f"{where}: body breaks the spec:\n  " + "\n  ".join(problems) + f"\nbody: {raw[:1000]!r}"
        if status >= 400:
            # The spec marks nothing required; the service always sends both (kv-errors.md, top).
            error = data.get("error") if isinstance(data, dict) else None
            assert isinstance(error, dict) and {"code", "message"} <= set(error), (
                f"{where}: an error body needs error.code and error.message: {raw[:300]!r}"
            )
        return name


def identity_token(port: int) -> str:
    """A bearer token for the emulator's vaults, fetched the way ManagedIdentityCredential does."""
    answer = requests.get(
        os.environ["IDENTITY_ENDPOINT"],
        headers={"X-IDENTITY-HEADER": os.environ["IDENTITY_HEADER"]},
        params={"api-version": "2019-08-01", "resource": f"https://localhost:{port}"},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()["access_token"]
