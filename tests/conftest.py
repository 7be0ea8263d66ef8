"""Shared fixtures: one emulator per test session (per xdist worker), a fresh vault per test.

Tests reach the emulator only through the doors users use: the real Azure SDK
clients after `kvlab.connect()`, the `kvlab` CLI, and raw HTTPS where a test
must send what the SDK never would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import kvlab

from runners import officer_vault


@pytest.fixture(scope="session")
def emulator():
    """The running emulator of this process's state directory, and this process connected to it."""
    return kvlab.connect()


@pytest.fixture(autouse=True)
def clock_at_today(request):
    """A test that uses the emulator starts with its clock at today: a lab run earlier in this process (lesson 06
    moves it a month on) must not shift another test's expiry or audit times. Notebooks run by nbval are not
    pytest functions: a module-scoped fixture that depends on the time resets the clock itself."""
    if "emulator" not in request.fixturenames:
        yield
        return
    lab = request.getfixturevalue("emulator")
    lab.reset_clock()
    yield
    lab.reset_clock()  # and leaves it there for the module-scoped fixtures that come next




@pytest.fixture
def vault_url(emulator) -> str:
    """A new, empty vault for one test, the learner holding Secrets Officer on it."""
    return officer_vault(emulator)


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


@pytest.fixture
def leaves_workspace_as_found(emulator):
    """Remove the Databricks scopes a test created: the workspace is shared by the tests of one process,
    and a guided notebook (nbval) lists its scopes."""
    before = {s["name"] for s in emulator.workspace_scopes()}
    yield
    for scope in emulator.workspace_scopes():
        if scope["name"] not in before:
            emulator.delete_workspace_scope(scope["name"])
