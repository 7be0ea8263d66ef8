"""The public roots and the emulator's CA as an OpenSSL certificate directory, for requests in this process.

Given a bundle *file* (``REQUESTS_CA_BUNDLE=trust-bundle.pem``), urllib3 loads the whole of it into every new
TLS connection: about 140 certificates, 45 ms a connection on a busy two-core machine, paid by every new
``SecretClient``'s first request. Given a *directory* (requests passes it on as ``ca_cert_dir``), OpenSSL
looks up only the issuer it needs, by the hash of its subject name, when it verifies: 0.4 ms. The roots and the
verification are the same; only the loading differs.

The file names are OpenSSL's ``<subject hash>.<n>`` (what ``openssl rehash`` writes; ``tests/test_trust.py``
compares them with it). The directory is named after its content and made whole before it appears, so the
processes of one state directory never see it half written, and a new certifi or CA gives a new directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", re.DOTALL)

# The string types OpenSSL puts in canonical form before hashing a name (ASN1_MASK_CANON), and how each is read
_CANONICAL = {0x0C: "utf-8", 0x13: "latin-1", 0x14: "latin-1", 0x16: "latin-1", 0x1A: "latin-1",
              0x1C: "utf-32-be", 0x1E: "utf-16-be"}


def _tlv(data: bytes, at: int) -> tuple[int, bytes, int]:
    """The DER element at ``at``: its tag, its content, and where the next one starts."""
    tag, length, at = data[at], data[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        length, at = int.from_bytes(data[at:at + count], "big"), at + count
    return tag, data[at:at + length], at + length


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + content


def _elements(content: bytes) -> list[tuple[int, bytes, bytes]]:
    """(tag, content, whole encoding) of each element of a constructed value."""
    found, at = [], 0
    while at < len(content):
        tag, inner, end = _tlv(content, at)
        found.append((tag, inner, content[at:end]))
        at = end
    return found


def _canonical_value(tag: int, content: bytes) -> bytes:
    """OpenSSL's asn1_string_canon: to UTF-8, outer white space dropped, inner runs made one space, ASCII
    lower-cased (bytes' split() and lower() touch ASCII only, as OpenSSL does); other types as they are."""
    if tag not in _CANONICAL:
        return _der(tag, content)
    return _der(0x0C, b" ".join(content.decode(_CANONICAL[tag]).encode("utf-8").split()).lower())


def subject_hash(certificate_der: bytes) -> str:
    """OpenSSL's X509_NAME_hash of the certificate's subject (``openssl x509 -subject_hash``)."""
    _, certificate, _ = _tlv(certificate_der, 0)
    _, tbs, _ = _tlv(certificate, 0)
    fields = _elements(tbs)
    if fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    _, subject, _ = fields[4]  # serial, signature algorithm, issuer, validity, subject
    canonical = b""
    for _, rdn, _ in _elements(subject):  # SET OF AttributeTypeAndValue
        entries = []
        for _, entry, _ in _elements(rdn):
            (_, _, oid), (tag, value, _) = _elements(entry)[:2]
            entries.append(_der(0x30, oid + _canonical_value(tag, value)))
        canonical += _der(0x31, b"".join(sorted(entries)))
    digest = hashlib.sha1(canonical).digest()  # noqa: S324 (OpenSSL's name hash is SHA-1, not a security choice)
    return f"{int.from_bytes(digest[:4], 'little'):08x}"


def certificates(*pem_texts: str) -> list[str]:
    return [match.group(0) for text in pem_texts for match in _PEM.finditer(text)]


def write_directory(pem_texts: list[str], parent: Path) -> Path:
    """``parent/trust-<digest>/``: each certificate of ``pem_texts`` as ``<subject hash>.<n>``; made once."""
    import ssl

    pems = list(dict.fromkeys(certificates(*pem_texts)))
    digest = hashlib.sha256("".join(pems).encode()).hexdigest()[:16]
    target = parent / f"trust-{digest}"
    if target.is_dir():
        return target
    staging = Path(tempfile.mkdtemp(prefix=".trust-", dir=parent))
    try:
        counts: dict[str, int] = {}
        for pem in pems:
            name = subject_hash(ssl.PEM_cert_to_DER_cert(pem))
            n = counts[name] = counts.get(name, -1) + 1
            path = staging / f"{name}.{n}"
            path.write_text(pem + "\n")
            path.chmod(0o600)  # inside the private state directory, private as all else (mkdtemp's folder is 0700)
        try:
            os.rename(staging, target)
        except OSError:  # another process made it first: the same content
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
