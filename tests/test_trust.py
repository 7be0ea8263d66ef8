"""The trusted certificates as a directory for requests (kvlab.trust): named as OpenSSL names them, holding the
public roots and the emulator's CA, and verifying as the bundle file did (a certificate from another CA is
refused)."""

from __future__ import annotations

import datetime
import os
import shutil
import ssl
import subprocess
import threading
from pathlib import Path

import certifi
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from kvlab.trust import certificates, subject_hash, write_directory


def self_signed(name: x509.Name, key=None) -> tuple[str, object]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key


# Names whose hash depends on OpenSSL's canonical form: case, white space, non-ASCII, other string types, and an
# RDN of two values (sorted by their encoding)
ODD_NAMES = [
    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "  Mixed   CASE\tname  ")]),
    x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Zürich Ünïcode AG"),
               x509.NameAttribute(NameOID.COMMON_NAME, "ÉCOLE Root")]),
    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BMP Root", _ASN1Type.BMPString),
               x509.NameAttribute(NameOID.EMAIL_ADDRESS, "Root@Example.COM")]),
    x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "B Org"),
                                               x509.NameAttribute(NameOID.COMMON_NAME, "a two-valued RDN")])]),
]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")
def test_the_names_are_the_subject_hashes_openssl_computes(emulator):
    pems = certificates(Path(certifi.where()).read_text(), (emulator.state_dir / "ca.pem").read_text(),
                        *(self_signed(name)[0] for name in ODD_NAMES))
    assert len(pems) > 100
    differ = []
    for pem in pems:
        theirs = subprocess.run(["openssl", "x509", "-noout", "-subject_hash"], input=pem, capture_output=True,
                                text=True, check=True).stdout.strip()
        if subject_hash(ssl.PEM_cert_to_DER_cert(pem)) != theirs:
            differ.append(theirs)
    assert differ == []


def test_a_connected_process_trusts_the_directory_which_holds_the_roots_and_the_emulators_ca(emulator):
    directory = Path(os.environ["REQUESTS_CA_BUNDLE"])
    assert directory.is_dir() and directory.parent == emulator.state_dir
    held = {path.read_text().strip() for path in directory.iterdir()}
    wanted = certificates(Path(certifi.where()).read_text(), (emulator.state_dir / "ca.pem").read_text())
    assert held == set(wanted)
    assert all(path.stat().st_mode & 0o077 == 0 for path in [directory, *directory.iterdir()])
    assert os.environ["SSL_CERT_FILE"] == str(emulator.state_dir / "trust-bundle.pem")  # ssl's contexts: the file
    # the same content gives the same directory; it is made once
    assert write_directory([(emulator.state_dir / "trust-bundle.pem").read_text()], emulator.state_dir) == directory


def test_requests_verifies_through_the_directory_and_refuses_another_ca(emulator, tmp_path):
    answer = requests.get(f"{emulator.url}/kvlab/health", timeout=10)  # the emulator's CA, found by its hash
    assert answer.status_code == 200
    # a TLS server whose certificate no trusted CA issued
    pem, key = self_signed(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
    (tmp_path / "cert.pem").write_text(pem)
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        def serve():
            try:
                connection, _ = server.accept()
                with context.wrap_socket(connection, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            requests.get(f"https://localhost:{server.getsockname()[1]}/", timeout=10)
        thread.join(10)


def test_a_directory_is_made_whole_or_not_at_all(tmp_path):
    """Makers running at once all get the same, complete directory."""
    parent = tmp_path
    pems = [self_signed(name)[0] for name in ODD_NAMES]
    results = []
    threads = [threading.Thread(target=lambda: results.append(write_directory(pems, parent))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    [made] = list(parent.iterdir())
    assert len(list(made.iterdir())) == len(ODD_NAMES)
