"""`kvlab.connect()`: trust, name resolution and identity for this process, nothing switched off."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import certifi

import kvlab
from kvlab.connection import ENVIRONMENT
from kvlab.emulator import control

from runners import connection_kept, free_port


def test_vault_urls_have_the_shape_the_sdk_challenge_check_accepts(emulator):
    assert emulator.vault_url("KV-Dev") == f"https://kv-dev.localhost:{emulator.port}/"


def test_trust_bundle_is_public_roots_plus_the_local_ca(emulator):
    """The bundle file for ssl's default contexts; requests has the same certificates as a directory
    (tests/test_trust.py)."""
    bundle = Path(os.environ["SSL_CERT_FILE"])
    assert bundle == emulator.state_dir / "trust-bundle.pem"
    content = bundle.read_text()
    ca = (emulator.state_dir / "ca.pem").read_text()
    assert content.count("BEGIN CERTIFICATE") == Path(certifi.where()).read_text().count("BEGIN CERTIFICATE") + 1
    assert ca.strip() in content
    # the ssl module's default context (what aiohttp uses) now verifies the emulator
    context = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", emulator.port)) as raw:
        with context.wrap_socket(raw, server_hostname="kv-anything.localhost") as tls:
            assert tls.getpeercert()["subjectAltName"] == (("DNS", "kv-anything.localhost"),)


def test_the_default_context_still_refuses_names_the_emulator_cannot_prove(emulator):
    context = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", emulator.port)) as raw:
        try:
            context.wrap_socket(raw, server_hostname="vault.azure.net")
        except ssl.SSLCertVerificationError:
            pass
        else:  # pragma: no cover - the assertion is the point
            raise AssertionError("a certificate for another name was accepted")


def test_only_localhost_names_are_resolved_specially(emulator):
    infos = socket.getaddrinfo("kv-x.localhost", 443, type=socket.SOCK_STREAM)
    assert {info[4][0] for info in infos} == {"127.0.0.1"}
    # other names go to the system resolver unchanged: an invalid name still fails
    try:
        socket.getaddrinfo("no-such-host.invalid", 443)
    except socket.gaierror:
        pass
    else:  # pragma: no cover
        raise AssertionError("a .invalid name resolved")


def test_connecting_elsewhere_for_a_while_leaves_this_processs_connection_as_it_was(emulator, tmp_path):
    """connect() to another emulator changes exactly the variables it names (kvlab.connection.ENVIRONMENT); put
    back, they leave this process as it was. (A CI run once connected elsewhere and put back all but the
    Databricks ones: a later WorkspaceClient() met the stopped emulator, and retried for five minutes.)"""
    from databricks.sdk import WorkspaceClient

    before = dict(os.environ)
    state = tmp_path / "elsewhere"
    with connection_kept():
        try:
            kvlab.connect(state_dir=state, port=free_port())
            assert {key for key in {*before, *os.environ} if before.get(key) != os.environ.get(key)} == set(ENVIRONMENT)
        finally:
            control.stop(state)
    assert dict(os.environ) == before
    assert isinstance(list(WorkspaceClient().secrets.list_scopes()), list)  # the session's workspace, reached


def test_managed_identity_environment_points_at_the_emulator(emulator):
    assert os.environ["IDENTITY_ENDPOINT"] == f"https://localhost:{emulator.port}/msi/token"
    assert len(os.environ["IDENTITY_HEADER"]) >= 32


def test_a_fresh_process_with_aiohttp_imported_first_still_works(tmp_path):
    """aiohttp builds its verifying context at import; connect() afterwards must still work."""
    script = textwrap.dedent(
        f"""
        import asyncio, aiohttp  # imported before connect() on purpose
        import kvlab
        from kvlab.emulator import control
        lab = kvlab.connect(state_dir={str(tmp_path)!r}, port={free_port()})
        try:
            url = lab.create_vault("kv-aio", exist_ok=True)["vaultUri"]
            lab.assign_role("Key Vault Secrets Officer", "learner", "kv-aio")
            from azure.identity.aio import DefaultAzureCredential
            from azure.keyvault.secrets.aio import SecretClient

            async def main():
                async with DefaultAzureCredential() as cred, SecretClient(url, cred) as client:
                    await client.set_secret("resend-api-key", "not-a-real-key")  # pragma: allowlist secret
                    return (await client.get_secret("resend-api-key")).value

            print(asyncio.run(main()))
        finally:
            control.stop({str(tmp_path)!r})
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "not-a-real-key"  # pragma: allowlist secret


def test_no_verification_is_switched_off_anywhere_in_the_project():
    root = Path(__file__).resolve().parents[1]
    forbidden = ("verify=False", "connection_verify=False", "verify_challenge_resource=False",
                 "CERT_NONE", "_create_unverified_context", "check_hostname = False")
    offenders = []
    for path in [*root.glob("kvlab/**/*.py"), *root.glob("notebooks/*.ipynb"), *root.glob("solutions/*.ipynb"),
                 *root.glob("labs/*.ipynb"), *root.glob("benchmarks/*.py")]:
        text = path.read_text(errors="replace").replace(" ", "")
        offenders += [f"{path.relative_to(root)}: {word}" for word in forbidden if word.replace(" ", "") in text]
    assert offenders == []


def test_a_refused_management_call_is_one_line_in_a_lesson_kernel(emulator):
    """Admin refuses bad input with a one-line ValueError; through a Lab (what lessons hand out) it is also a
    LearnerError, which a lesson's kernel shows as that line instead of a traceback into kvlab."""
    import pytest

    from kvlab.connection import LabError
    from kvlab.stubs import LearnerError

    with pytest.raises(LabError, match=r"^no identity 'etl@kvlab.local'") as caught:
        emulator.assign_role("Key Vault Secrets User", "etl@kvlab.local", "kv-nowhere")
    assert isinstance(caught.value, LearnerError) and isinstance(caught.value, ValueError)
    with pytest.raises(LabError, match="invalid scope"):
        emulator.role_assignments(scope="a/b")
    from kvlab.emulator.events import SubscriptionError

    with pytest.raises(SubscriptionError, match="there is no vault") as caught:  # its own kind too
        emulator.create_event_subscription("one-line", "kv-nowhere", "https://example.com/hook")
    assert isinstance(caught.value, LabError) and type(caught.value).__name__ == "SubscriptionError"
    assert emulator.create_vault("kv-one-line", exist_ok=True)["vaultUri"].startswith("https://kv-one-line.localhost:")  # what works still does
