"""The ``kvlab`` command.

Like ``az``: every command prints JSON (or a table with ``-o table``) and exits
non-zero with a one-line reason on error, never a traceback.
"""

from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path

import click

from . import paths

OUTPUT = click.option(
    "-o", "--output", type=click.Choice(["json", "table"]), default="json", show_default=True,
    help="Output format.",
)
STATE_DIR = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), envvar="KVLAB_STATE_DIR",
    help="Where the emulator keeps its state [env: KVLAB_STATE_DIR; default: a per-user data directory].",
)


def emit(data, output: str) -> None:
    if output == "table":
        from tabulate import tabulate

        rows = data if isinstance(data, list) else [data]
        click.echo(tabulate([{k: v for k, v in r.items()} for r in rows], headers="keys") if rows else "(none)")
    else:
        click.echo(json.dumps(data, indent=2))


def one_line_errors(func):
    """Turn any expected failure into ``error: <reason>`` on stderr and exit status 1."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        from .emulator.control import EmulatorError

        try:
            return func(*args, **kwargs)
        except (EmulatorError, ValueError, OSError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kvlab")
def main() -> None:
    """kvlab: the Azure Key Vault workbook's helper and its local Key Vault emulator."""


# -- emulator -----------------------------------------------------------------


@main.group()
def emulator() -> None:
    """Start, stop and inspect the local Key Vault emulator."""


@emulator.command("start")
@click.option("--port", type=click.IntRange(1, 65535), help=f"Port to listen on [default: $KVLAB_PORT or {paths.DEFAULT_PORT}].")
@STATE_DIR
@OUTPUT
@one_line_errors
def emulator_start(port, state_dir, output) -> None:
    """Start the emulator in the background (or report the one already running)."""
    from .emulator import control

    emit(control.start(state_dir, port), output)


@emulator.command("stop")
@STATE_DIR
@OUTPUT
@one_line_errors
def emulator_stop(state_dir, output) -> None:
    """Stop the emulator of this state directory (nothing to do if it is not running)."""
    from .emulator import control

    emit(control.stop(state_dir), output)


@emulator.command("status")
@STATE_DIR
@OUTPUT
@one_line_errors
def emulator_status(state_dir, output) -> None:
    """Whether the emulator runs, and where."""
    from .emulator import control

    emit(control.status(state_dir), output)


# -- vaults -------------------------------------------------------------------


def _vaults(state_dir):
    from .emulator.store import Store
    from .emulator.vaults import Vaults

    return Vaults(Store(paths.state_dir(state_dir) / "kvlab.db"))


def _vault_json(vaults, row) -> dict:
    from .emulator.vaults import recovery_level

    port = _port(vaults)
    return {
        "name": row.name,
        "vaultUri": f"https://{row.name}.localhost:{port}/",
        "enableRbacAuthorization": True,
        "enableSoftDelete": True,
        "softDeleteRetentionInDays": row.retention_days,
        "recoveryLevel": recovery_level(row),
        "throttling": row.throttling,
    }


def _port(vaults) -> int:
    from .emulator import control

    current = control.status(vaults.store.path.parent)
    if current["running"]:
        return current["port"]
    return int(vaults.store.get_meta("last_port") or paths.default_port())


@main.group()
def vault() -> None:
    """Create, list and delete vaults in the emulator."""


@vault.command("create")
@click.option("--name", "-n", required=True, help="Vault name: 3-24 letters, digits and hyphens.")
@click.option("--throttling", type=click.Choice(["off", "real"]), default="off", show_default=True,
              help="'real' applies the service's request limits.")
@STATE_DIR
@OUTPUT
@one_line_errors
def vault_create(name, throttling, state_dir, output) -> None:
    """Create a vault (RBAC permission model, soft delete with 90 days' retention)."""
    vaults = _vaults(state_dir)
    emit(_vault_json(vaults, vaults.create_vault(name, throttling=throttling)), output)


@vault.command("list")
@STATE_DIR
@OUTPUT
@one_line_errors
def vault_list(state_dir, output) -> None:
    """List the emulator's vaults."""
    vaults = _vaults(state_dir)
    emit([_vault_json(vaults, row) for row in vaults.list_vaults()], output)


@vault.command("delete")
@click.option("--name", "-n", required=True, help="The vault to delete, with all its secrets.")
@STATE_DIR
@OUTPUT
@one_line_errors
def vault_delete(name, state_dir, output) -> None:
    """Delete a vault and everything in it."""
    vaults = _vaults(state_dir)
    vaults.delete_vault(name)
    emit({"name": name.lower(), "deleted": True}, output)


if __name__ == "__main__":
    main()
