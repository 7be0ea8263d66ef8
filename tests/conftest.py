"""Shared fixtures: one emulator per test session (per xdist worker), a fresh vault per test.

Tests reach the emulator only through the doors users use: the real Azure SDK
clients after `kvlab.connect()`, the `kvlab` CLI, and raw HTTPS where a test
must send what the SDK never would.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

import kvlab
from kvlab.emulator import control


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """A running emulator with its own state directory, and this process connected to it."""
    state = tmp_path_factory.mktemp("kvlab-state")
    lab = kvlab.connect(state_dir=state, port=free_port())
    yield lab
    control.stop(state)


@pytest.fixture
def vault_url(emulator) -> str:
    """A new, empty vault for one test."""
    return emulator.create_vault(f"t{uuid.uuid4().hex[:12]}")


@pytest.fixture
def client(vault_url):
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    with DefaultAzureCredential() as credential, SecretClient(vault_url, credential) as c:
        yield c


@pytest.fixture
async def aclient(vault_url):
    from azure.identity.aio import DefaultAzureCredential
    from azure.keyvault.secrets.aio import SecretClient

    async with DefaultAzureCredential() as credential, SecretClient(vault_url, credential) as c:
        yield c


SPEC = Path(__file__).parent / "spec" / "secrets-2026-04-01.json"


@pytest.fixture(scope="session")
def spec_path() -> Path:
    """The official Key Vault secrets REST spec (a verbatim copy, see tests/spec/README.md)."""
    return SPEC
