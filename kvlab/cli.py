"""The ``kvlab`` command.

Like ``az``: every command prints JSON (or a table with ``-o table``) and exits
non-zero with a one-line reason on error, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from functools import wraps
from pathlib import Path

import click

from . import paths
from .emulator.throttle import MODES as THROTTLING
from .errors import Refusal
from .feedback import printable
from .workshop.records import DEFAULT_PORT as WORKSHOP_PORT
from .workshop.records import SERVICE_DIR

OUTPUT = click.option(
    "-o", "--output", type=click.Choice(["json", "table"]), default="json", show_default=True,
    help="Output format.",
)
STATE_DIR = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), envvar="KVLAB_STATE_DIR",
    help="Where the emulator keeps its state [env: KVLAB_STATE_DIR; default: a per-user data directory].",
)


TABLE_WIDTH = 120  # when stdout is no terminal (a pipe, a file, CI) and $COLUMNS is not set
COLUMN_GAP = 2  # what tabulate's "simple" format puts between columns
HEADER_PADDING = 2  # and what it adds to a header's width (its MIN_PADDING)
SHARE = 16  # the least a wrapped column gets while narrower ones are kept whole
NARROWEST = 8  # below this a wrapped column is unreadable: list fields one per line instead


def emit(data, output: str) -> None:
    """Print ``data`` as indented JSON, or with ``-o table`` as a table that fits the terminal."""
    if output == "table":
        rows = data if isinstance(data, list) else [data]
        click.echo(table(rows, terminal_width()) if rows else "(none)")
    else:
        click.echo(json.dumps(data, indent=2))


def only(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """The fields a table shows, in this order (JSON output keeps every field)."""
    return [{k: r.get(k) for k in keys} for r in rows]


def terminal_width() -> int:
    """The terminal's width ($COLUMNS first), or TABLE_WIDTH when there is none to ask."""
    columns = shutil.get_terminal_size((TABLE_WIDTH, 24)).columns
    return columns if columns > 0 else TABLE_WIDTH


def cell(value) -> object:
    """A value as a table shows it: lists as ``a, b``, objects as ``k=v`` pairs (never Python reprs), text
    printable."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(cell(v)) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    if isinstance(value, str):
        return printable(value)  # the audit log keeps the name a refused request asked for, whatever it holds
    return "" if value is None else value


def table(rows: list[dict], width: int) -> str:
    """Rows as columns no wider than ``width`` in all: long cells wrap, the narrow ones stay whole.

    Resource ids and URLs would otherwise make lines hundreds of characters
    long, which a terminal folds into an unreadable mess.
    """
    from tabulate import tabulate

    headers = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[cell(row.get(h)) for h in headers] for row in rows]
    natural = [max(len(h) + HEADER_PADDING, *(len(str(r[i])) for r in cells)) for i, h in enumerate(headers)]
    widths = fit(natural, width - COLUMN_GAP * (len(headers) - 1))
    if any(w < min(n, NARROWEST) for w, n in zip(widths, natural)):
        return listing(headers, cells, width)
    return tabulate(cells, headers=headers, maxcolwidths=widths, disable_numparse=True, break_on_hyphens=False,
                    maxheadercolwidths=[w - HEADER_PADDING for w in widths])


def fit(natural: list[int], budget: int) -> list[int]:
    """Column widths within ``budget``: the narrowest columns stay whole, the widest share what is left.

    Ids, names and times read badly when broken, so they are kept whole as long
    as every column still to place can get SHARE characters; the wide ones
    (resource ids, descriptions, lists) wrap.
    """
    if sum(natural) <= budget:
        return natural
    whole, used = set(), 0
    for placed, i in enumerate(sorted(range(len(natural)), key=natural.__getitem__)):
        if used + natural[i] + SHARE * (len(natural) - placed - 1) > budget:
            break
        whole.add(i)
        used += natural[i]
    wrapped = [i for i in range(len(natural)) if i not in whole]
    shares = iter(share([natural[i] for i in wrapped], budget - used))
    return [natural[i] if i in whole else next(shares) for i in range(len(natural))]


def share(natural: list[int], budget: int) -> list[int]:
    """Widths within ``budget``: columns under a fair share keep theirs, the rest split the remainder evenly."""
    if sum(natural) <= budget:
        return natural
    remaining, wide = budget, sorted(natural)
    while wide[0] <= remaining // len(wide):  # the widest never fits here, so `wide` never empties
        remaining -= wide.pop(0)
    cap, spare = divmod(remaining, len(wide))
    widths = []
    for w in natural:
        if w > cap:
            w = cap + (1 if spare > 0 else 0)
            spare -= 1
        widths.append(max(w, 1))
    return widths


def listing(headers: list[str], cells: list[list], width: int) -> str:
    """Too many columns for the terminal: each row as ``field  value`` lines, values wrapped."""
    import textwrap

    label = max(len(h) for h in headers)
    room = max(width - label - COLUMN_GAP, NARROWEST)
    blocks = []
    for row in cells:
        lines = []
        for header, value in zip(headers, row):
            wrapped = textwrap.wrap(str(value), room, break_on_hyphens=False) or [""]
            lines.append(f"{header:<{label}}  {wrapped[0]}".rstrip())
            lines += [f"{'':<{label}}  {more}" for more in wrapped[1:]]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def note(message: str) -> None:
    """A one-line remark on stderr, so stdout stays the JSON (or table) that scripts read."""
    click.echo(f"kvlab: {message}", err=True)


def report_start(info: dict, what: str, output: str) -> None:
    """A background service's start: its record, and a remark when it was already running."""
    if info["alreadyRunning"]:
        note(f"the {what} is already running on port {info['port']}")
    emit(info, output)


def report_stop(stopped: dict, what: str, output: str) -> None:
    if not stopped["wasRunning"]:
        note(f"the {what} is not running")
    emit(stopped, output)


def one_line_errors(func):
    """Turn any expected failure into ``error: <reason>`` on stderr and exit status 1."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (Refusal, ValueError, OSError, KeyError) as exc:  # the emulator's, the database's, a reference's
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
@click.option("--stop-with", type=click.IntRange(1), metavar="PID", help="Stop the emulator once process PID has "
              "ended (a start script passes its own, `$$`, before it becomes the notebook server).")
@STATE_DIR
@OUTPUT
@one_line_errors
def emulator_start(port, stop_with, state_dir, output) -> None:
    """Start the emulator in the background (or report the one already running)."""
    from .emulator import control

    report_start(control.start(state_dir, port, stop_with), "emulator", output)


@emulator.command("stop")
@STATE_DIR
@OUTPUT
@one_line_errors
def emulator_stop(state_dir, output) -> None:
    """Stop the emulator of this state directory (nothing to do if it is not running)."""
    from .emulator import control

    report_stop(control.stop(state_dir), "emulator", output)


@emulator.command("status")
@STATE_DIR
@OUTPUT
@one_line_errors
def emulator_status(state_dir, output) -> None:
    """Whether the emulator runs, and where."""
    from .emulator import control

    emit(control.status(state_dir), output)


# -- vaults -------------------------------------------------------------------


def _admin(state_dir):
    from .admin import Admin

    return Admin(state_dir)


@main.group()
def vault() -> None:
    """Create, update, list and delete vaults in the emulator."""


@vault.command("create")
@click.option("--name", "-n", required=True, help="Vault name: 3-24 letters, digits and hyphens.")
@click.option("--throttling", type=click.Choice(THROTTLING), default="off", show_default=True,
              help="'real' applies the service's limits: 300 creates and 4,000 other operations per 10 s.")
@STATE_DIR
@OUTPUT
@one_line_errors
def vault_create(name, throttling, state_dir, output) -> None:
    """Create a vault (RBAC permission model, soft delete with 90 days' retention).

    Like a new Azure vault, it grants no data access to anyone: assign a role
    first (kvlab role assignment create).
    """
    emit(_admin(state_dir).create_vault(name, throttling=throttling), output)


@vault.command("update")
@click.option("--name", "-n", required=True, help="The vault to change.")
@click.option("--throttling", type=click.Choice(THROTTLING), required=True,
              help="'real' applies the service's limits; 'off' lifts them.")
@STATE_DIR
@OUTPUT
@one_line_errors
def vault_update(name, throttling, state_dir, output) -> None:
    """Change a vault's settings."""
    emit(_admin(state_dir).update_vault(name, throttling), output)


# The table leaves out the resource id (the vault URI names the vault) and the
# settings every vault here shares (RBAC and soft delete on).
VAULT_COLUMNS = ("name", "vaultUri", "recoveryLevel", "softDeleteRetentionInDays", "throttling")


@vault.command("list")
@STATE_DIR
@OUTPUT
@one_line_errors
def vault_list(state_dir, output) -> None:
    """List the emulator's vaults."""
    vaults = _admin(state_dir).list_vaults()
    emit(only(vaults, VAULT_COLUMNS) if output == "table" else vaults, output)


@vault.command("delete")
@click.option("--name", "-n", required=True, help="The vault to delete, with all its secrets.")
@STATE_DIR
@OUTPUT
@one_line_errors
def vault_delete(name, state_dir, output) -> None:
    """Delete a vault, its secrets and its role assignments at once: deleted and purged in one step (`az keyvault
    delete` soft-deletes it, as Azure does)."""
    emit(_admin(state_dir).delete_vault(name), output)


# -- identities ---------------------------------------------------------------


@main.group()
def identity() -> None:
    """Managed identities: the callers that get tokens from the emulator."""


@identity.command("create")
@click.option("--name", "-n", required=True, help="Identity name, e.g. id-adf-sales.")
@STATE_DIR
@OUTPUT
@one_line_errors
def identity_create(name, state_dir, output) -> None:
    """Create a user-assigned managed identity (prints its clientId and principalId)."""
    emit(_admin(state_dir).create_identity(name), output)


@identity.command("list")
@STATE_DIR
@OUTPUT
@one_line_errors
def identity_list(state_dir, output) -> None:
    """List identities, the built-in 'learner' and 'AzureDatabricks' included."""
    emit(_admin(state_dir).list_identities(), output)


@identity.command("delete")
@click.option("--name", "-n", required=True, help="The identity to delete (with its role assignments).")
@STATE_DIR
@OUTPUT
@one_line_errors
def identity_delete(name, state_dir, output) -> None:
    """Delete a user-assigned identity and its role assignments."""
    emit(_admin(state_dir).delete_identity(name), output)


# -- a shell beside the notebook ------------------------------------------------------

SHELLS = ("bash", "zsh", "fish", "powershell", "cmd", "json")


def shell_lines(variables: dict[str, str], shell: str) -> str:
    """``variables`` as the lines that set them in ``shell`` (values quoted for it)."""
    if shell == "json":
        return json.dumps(variables, indent=2)
    if shell in ("bash", "zsh"):
        return "\n".join(f"export {k}='" + v.replace("'", "'\\''") + "'" for k, v in variables.items())
    if shell == "fish":
        return "\n".join(f"set -gx {k} '" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for k, v in variables.items())
    if shell == "powershell":
        return "\n".join(f"$env:{k} = '" + v.replace("'", "''") + "'" for k, v in variables.items())
    return "\n".join(f'set "{k}={v}"' for k, v in variables.items())  # cmd: values here hold no quote or %


@main.command("env")
@click.option("--shell", type=click.Choice(SHELLS), default=None,
              help="The shell to write for [default: from $SHELL, else bash]; json for programs.")
@STATE_DIR
@one_line_errors
def env(shell, state_dir) -> None:
    """Print the lines that point a shell at the emulator: eval "$(kvlab env)".

    They set the trust bundle (REQUESTS_CA_BUNDLE, SSL_CERT_FILE, NODE_EXTRA_CA_CERTS), the
    managed-identity endpoint (IDENTITY_ENDPOINT, IDENTITY_HEADER), the Databricks workspace
    (DATABRICKS_HOST, DATABRICKS_TOKEN), the HTTPS proxy that reaches *.localhost names, and
    AZURE_CONFIG_DIR, so the Azure CLI in that shell keeps its profile in the state directory,
    never in ~/.azure. Starts the emulator if it is not running. Names under
    .localhost resolve to this machine only where the system or the program does it.
    """
    from .connection import environment

    if shell is None:
        shell = Path(os.environ.get("SHELL", "bash")).name
        shell = shell if shell in SHELLS else "bash"
    click.echo(shell_lines(environment(state_dir), shell))


# -- the Databricks workspace -----------------------------------------------------


@main.group()
def databricks() -> None:
    """The emulator's Databricks workspace: its URL, users and their personal access tokens."""


@databricks.command("workspace")
@click.option("--user", help="Whose token to print [default: the learner, the workspace's admin].")
@STATE_DIR
@OUTPUT
@one_line_errors
def databricks_workspace(user, state_dir, output) -> None:
    """Print the workspace's host and a personal access token (for DATABRICKS_HOST and DATABRICKS_TOKEN)."""
    emit(_admin(state_dir).workspace(user), output)


@databricks.group("user")
def databricks_user() -> None:
    """Workspace users, for secret scope ACLs."""


@databricks_user.command("create")
@click.option("--name", "-n", required=True, help="The user's e-mail address, e.g. ana@example.com.")
@click.option("--admin", is_flag=True, help="A workspace admin (MANAGE on every scope).")
@STATE_DIR
@OUTPUT
@one_line_errors
def databricks_user_create(name, admin, state_dir, output) -> None:
    """Add a workspace user and print its personal access token."""
    emit(_admin(state_dir).create_workspace_user(name, admin), output)


@databricks_user.command("list")
@STATE_DIR
@OUTPUT
@one_line_errors
def databricks_user_list(state_dir, output) -> None:
    """List the workspace's users (without their tokens)."""
    emit(_admin(state_dir).workspace_users(), output)


# -- the database of lesson 05, and Data Factory linked services ---------------------


@main.group()
def db() -> None:
    """A real PostgreSQL for the pipelines (lesson 05): password authentication, data in the state directory."""


@db.command("start")
@click.option("--port", type=click.IntRange(1, 65535),
              help="Port for a new database [default: $KVLAB_DB_PORT, 15432, or a free one]; kept afterwards.")
@STATE_DIR
@OUTPUT
@one_line_errors
def db_start(port, state_dir, output) -> None:
    """Start the database in the background (creating it the first time), or report the one running."""
    from . import db as database

    report_start(database.start(state_dir, port), "database", output)


@db.command("stop")
@STATE_DIR
@OUTPUT
@one_line_errors
def db_stop(state_dir, output) -> None:
    """Stop the database (its data stays)."""
    from . import db as database

    report_stop(database.stop(state_dir), "database", output)


@db.command("status")
@STATE_DIR
@OUTPUT
@one_line_errors
def db_status(state_dir, output) -> None:
    """Whether the database runs, and where (never a password)."""
    from . import db as database

    emit(database.status(state_dir), output)


@main.group()
def adf() -> None:
    """Azure Data Factory linked services: the commit check, and Key Vault references resolved as ADF does."""


@adf.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@OUTPUT
def adf_check(paths, output) -> None:
    """Check linked services (files, or folders such as an ADF Git repository) for credentials in the JSON.

    Flags SecureStrings with a value, credentials in connection strings (Password=, Pwd=, AccountKey=,
    SharedAccessSignature=), SAS signatures (sig=), plain passwords and keys, and references to a Key
    Vault linked service that is not there; warns about encryptedCredential. Key Vault references,
    managed-identity authentication and expressions (@linkedService().password) pass. Never prints a
    value. Exit status: 0 clean (warnings allowed), 1 errors found, 2 bad input. As a pre-commit hook:
    id `kvlab-adf-check` (see .pre-commit-hooks.yaml).
    """
    from . import adf as factory

    try:
        services, findings = factory.check(list(paths))
    except factory.AdfError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    rows = [dataclasses.asdict(f) for f in findings]
    if output == "table":
        click.echo(table(only(rows, ("severity", "file", "field", "message")), terminal_width())
                   if rows else "(no findings)")
    else:
        emit(rows, output)
    errors = sum(f.severity == "error" for f in findings)
    note(f"{len(services)} linked service{'s' * (len(services) != 1)}: {errors} error{'s' * (errors != 1)}, "
         f"{len(findings) - errors} warning{'s' * (len(findings) - errors != 1)}")
    if errors:
        sys.exit(1)


FACTORY_IDENTITY = click.option("--factory-identity", required=True,
                                help="The factory's managed identity (an emulator identity name or client id).")
REPO = click.option("--repo", type=click.Path(file_okay=False, path_type=Path),
                    help="Where the Key Vault linked services are [default: beside FILE].")


@adf.command("resolve")
@click.argument("file", type=click.Path(path_type=Path))
@FACTORY_IDENTITY
@REPO
@STATE_DIR
@OUTPUT
@one_line_errors
def adf_resolve(file, factory_identity, repo, state_dir, output) -> None:
    """Resolve FILE's Key Vault references as the factory does at run time; print which secret and
    version each field got, never the value."""
    from . import adf as factory
    from .connection import connect

    emit([r.describe() for r in factory.resolve(file, factory_identity, repo, lab=connect(state_dir))], output)


@adf.command("run-connection")
@click.argument("file", type=click.Path(path_type=Path))
@FACTORY_IDENTITY
@REPO
@STATE_DIR
@OUTPUT
@one_line_errors
def adf_run_connection(file, factory_identity, repo, state_dir, output) -> None:
    """Resolve an AzurePostgreSql linked service's password as the factory, connect, and report who it is
    connected as (ADF Studio's "Test connection")."""
    from . import adf as factory
    from .connection import connect

    emit(factory.connect(file, factory_identity, repo, lab=connect(state_dir)), output)


# -- roles ----------------------------------------------------------------------


@main.group()
def role() -> None:
    """Azure RBAC for vault data: the four Key Vault roles and their assignments."""


@role.command("definition")
@OUTPUT
@one_line_errors
def role_definition(output) -> None:
    """List the built-in Key Vault data roles and their data actions."""
    from .admin import Admin

    emit(Admin.role_definitions(), output)


@role.group("assignment")
def role_assignment() -> None:
    """Create, list and delete role assignments."""


ROLE_HELP = ("Role name or GUID: 'Key Vault Administrator', 'Key Vault Secrets Officer', "
             "'Key Vault Secrets User', 'Key Vault Reader'.")


@role_assignment.command("create")
@click.option("--role", required=True, help=ROLE_HELP)
@click.option("--assignee", required=True, help="Identity name, client id or principal id.")
@click.option("--scope", required=True, help="VAULT, VAULT/secrets/NAME, or a full resource id.")
@STATE_DIR
@OUTPUT
@one_line_errors
def role_assignment_create(role, assignee, scope, state_dir, output) -> None:
    """Grant a role to an identity on a vault or on one secret."""
    emit(_admin(state_dir).assign_role(role, assignee, scope), output)


@role_assignment.command("list")
@click.option("--assignee", help="Only this identity's assignments.")
@click.option("--scope", help="Only assignments in this vault.")
@STATE_DIR
@OUTPUT
@one_line_errors
def role_assignment_list(assignee, scope, state_dir, output) -> None:
    """List role assignments."""
    found = _admin(state_dir).role_assignments(assignee, scope)
    if output == "table":
        found = [{**a, "scope": short_scope(a["scope"])} for a in only(found, ASSIGNMENT_COLUMNS)]
    emit(found, output)


# As `az role assignment list -o table`: who, which role, where (as --scope takes it), and the
# name --id takes; the full ids repeat what these say.
ASSIGNMENT_COLUMNS = ("name", "principalName", "principalType", "roleDefinitionName", "scope")


def short_scope(resource_id: str) -> str:
    """A vault or secret resource id as ``--scope`` takes it: ``VAULT`` or ``VAULT/secrets/NAME``."""
    return resource_id.split("/vaults/", 1)[-1]


@role_assignment.command("delete")
@click.option("--id", "assignment_id", help="The assignment's id (or name).")
@click.option("--role", help=ROLE_HELP)
@click.option("--assignee", help="Identity name, client id or principal id.")
@click.option("--scope", help="VAULT or VAULT/secrets/NAME.")
@STATE_DIR
@OUTPUT
@one_line_errors
def role_assignment_delete(assignment_id, role, assignee, scope, state_dir, output) -> None:
    """Remove a role assignment, by --id or by --role, --assignee and --scope."""
    emit(_admin(state_dir).delete_role_assignment(assignment_id, role, assignee, scope), output)


# -- audit, events, clock ---------------------------------------------------------


AUDIT_COLUMNS = ("time", "vault", "operationName", "identity", "secretName", "httpStatusCode", "resultDescription")


@main.group(invoke_without_command=True)
@click.option("--vault", help="Only this vault's records.")
@click.option("--since", help="A duration before now (15m, 2h, 7d) or an ISO time.")
@click.option("--identity", help="Only this caller's records (identity name or id).")
@STATE_DIR
@OUTPUT
@click.pass_context
@one_line_errors
def audit(ctx, vault, since, identity, state_dir, output) -> None:
    """The vault audit log (Key Vault AuditEvent records; never a secret value);
    `kvlab audit retention` says how much of it is kept."""
    if ctx.invoked_subcommand is not None:
        return
    records = _admin(state_dir).audit(vault, since, identity)
    emit(only(records, AUDIT_COLUMNS) if output == "table" else records, output)


@audit.command("retention")
@click.option("--records", type=int, help="Keep the newest N records of each audit log (at least 1000).")
@click.option("--days", type=int, help="Also drop records older than N days on the emulator's clock (0: no limit).")
@STATE_DIR
@OUTPUT
@one_line_errors
def audit_retention(records, days, state_dir, output) -> None:
    """How much of the audit logs is kept, or change it. Records after the latest lesson started are always
    kept: its checks read them."""
    emit(_admin(state_dir).retention(records, days), output)


@main.group(invoke_without_command=True)
@click.option("--vault", help="Only this vault's events.")
@STATE_DIR
@OUTPUT
@click.pass_context
@one_line_errors
def events(ctx, vault, state_dir, output) -> None:
    """Secret events as Event Grid would deliver them (new version, near expiry, expired);
    `kvlab events subscription ...` delivers them to a webhook."""
    if ctx.invoked_subcommand is not None:
        return
    found = _admin(state_dir).events(vault)
    if output == "table":
        found = [{"eventTime": e["eventTime"], "eventType": e["eventType"].rsplit(".", 1)[-1],
                  "vault": e["data"]["VaultName"], "secret": e["subject"], "version": e["data"]["Version"]}
                 for e in found]
    emit(found, output)


@events.group("subscription")
def event_subscription() -> None:
    """Webhooks that receive a vault's secret events, as Event Grid delivers them (az eventgrid event-subscription)."""


@event_subscription.command("create")
@click.option("--name", "-n", required=True, help="The subscription's name.")
@click.option("--vault", required=True, help="Whose secret events (the topic).")
@click.option("--endpoint", required=True, help="The webhook: http(s)://127.0.0.1:<port>/... on this machine.")
@click.option("--event-type", "event_types", multiple=True,
              help="Only these: SecretNewVersionCreated, SecretNearExpiry, SecretExpired [default: all].")
@STATE_DIR
@OUTPUT
@one_line_errors
def event_subscription_create(name, vault, endpoint, event_types, state_dir, output) -> None:
    """Subscribe a webhook (after Event Grid's validation handshake); it receives events from now on. One of the
    same name on the vault is replaced, as az's create does."""
    emit(_admin(state_dir).create_event_subscription(name, vault, endpoint, event_types), output)


@event_subscription.command("list")
@STATE_DIR
@OUTPUT
@one_line_errors
def event_subscription_list(state_dir, output) -> None:
    """The event subscriptions, with failed deliveries waiting for a retry."""
    found = _admin(state_dir).event_subscriptions()
    if output == "table":
        found = only(found, ("name", "vault", "endpoint", "eventTypes", "failedDeliveries", "lastError"))
    emit(found, output)


@event_subscription.command("delete")
@click.option("--name", "-n", required=True)
@STATE_DIR
@OUTPUT
@one_line_errors
def event_subscription_delete(name, state_dir, output) -> None:
    """Stop delivering to a webhook."""
    emit(_admin(state_dir).delete_event_subscription(name), output)


@main.group()
def clock() -> None:
    """The emulator's clock: move it forward to see expiry, purge and events happen."""


@clock.command("show")
@STATE_DIR
@OUTPUT
@one_line_errors
def clock_show(state_dir, output) -> None:
    """The emulator's current time and its offset from real time."""
    emit(_admin(state_dir).clock(), output)


@clock.command("advance")
@click.option("--days", type=click.FloatRange(min=0), default=0, help="Days to move forward.")
@click.option("--hours", type=click.FloatRange(min=0), default=0, help="Hours to move forward.")
@click.option("--minutes", type=click.FloatRange(min=0), default=0, help="Minutes to move forward.")
@STATE_DIR
@OUTPUT
@one_line_errors
def clock_advance(days, hours, minutes, state_dir, output) -> None:
    """Move the clock forward (it never goes back: `kvlab clock reset` returns to real time)."""
    if not (days or hours or minutes):
        raise click.UsageError("say how far to move the clock: give --days, --hours and/or --minutes")
    emit(_admin(state_dir).advance_clock(days, hours, minutes), output)


@clock.command("reset")
@STATE_DIR
@OUTPUT
@one_line_errors
def clock_reset(state_dir, output) -> None:
    """Return to real time."""
    emit(_admin(state_dir).reset_clock(), output)


# -- the workbook ---------------------------------------------------------------


@main.group()
def labs() -> None:
    """The lab notebooks, generated from the solutions."""


@labs.command("build")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=".", show_default=True,
              help="The workbook folder (the one holding solutions/ and labs/).")
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if labs/ is stale.")
@OUTPUT
@one_line_errors
def labs_build(root, check, output) -> None:
    """Write labs/ from solutions/: answers become stubs, outputs and metadata go."""
    from .labs import build

    results = build(root, check=check)
    stale = [str(r.lab) for r in results if r.changed]
    emit([{"lab": str(r.lab), "changed": r.changed} for r in results], output)
    if check and stale:
        click.echo(f"error: labs/ is stale ({', '.join(stale)}); run: kvlab labs build", err=True)
        sys.exit(1)


@main.group()
def notebooks() -> None:
    """The guided notebooks (for instructors and maintainers)."""


@notebooks.command("refresh")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=".", show_default=True,
              help="The workbook folder (the one holding notebooks/).")
@OUTPUT
@one_line_errors
def notebooks_refresh(paths, root, output) -> None:
    """Re-run guided notebooks in place against a fresh emulator (all of notebooks/, or PATHS).

    Their outputs are committed and nbval re-verifies them, so run this after editing one.
    """
    from .labs import refresh_outputs

    done = refresh_outputs(root, only=list(paths) or None)
    emit([{"notebook": str(p), "executed": True} for p in done], output)


@main.command()
@STATE_DIR
@OUTPUT
@one_line_errors
def progress(state_dir, output) -> None:
    """Your progress: the latest check result of every exercise."""
    from . import tracker

    if output == "table":
        click.echo(tracker.text(state_dir))
    else:
        emit(tracker.rows(state_dir), output)



# -- workshops ------------------------------------------------------------------


@main.group()
def workshop() -> None:
    """A live class dashboard for instructor-led workshops: serve it, or join one as a learner."""


@workshop.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; put TLS in front of it, e.g. JupyterHub's proxy).")
@click.option("--port", type=click.IntRange(1, 65535), default=WORKSHOP_PORT, show_default=True)
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Where the class is kept: its codes and results [default: workshop/ in the state directory].")
@click.option("--stuck-minutes", type=click.IntRange(1, 600), default=10, show_default=True,
              help="A learner with nothing newly correct for this long is listed as stuck.")
@click.option("--public-url", metavar="URL", help="The address learners reach the service by, if not "
              "http://HOST:PORT (a proxy in front of it).")
@click.option("--prefix", default="", metavar="PATH", help="The path the service is served under behind a proxy "
              "(JupyterHub's: /services/NAME).")
@click.option("--code", envvar="KVLAB_WORKSHOP_CODE", metavar="CODE", help="The class code to use (8-64 letters, "
              "digits, - or _), e.g. one a deployment also gives learners [env: KVLAB_WORKSHOP_CODE; default: one "
              "made at the first start and kept].")
@click.option("--hub-auth", is_flag=True, help="Run by JupyterHub as a service: learners are the hub users "
              "their servers' tokens belong to, and the instructor page signs in through the hub (for hub users "
              "with the scope custom:kvlab-workshop:instruct).")
@STATE_DIR
@one_line_errors
def workshop_serve(host, port, directory, stuck_minutes, public_url, prefix, code, hub_auth, state_dir) -> None:
    """Serve the class dashboard until Ctrl-C: prints the learners' join URL and the instructor's URL.

    The join URL carries the class code, which lets anyone who has it join and send their own results,
    nothing more; the instructor URL carries the instructor's key: keep it to yourself. Both stay the same
    when the service is started again on the same --dir.
    """
    import socket

    import uvicorn

    from .workshop import service

    directory = directory or paths.state_dir(state_dir) / SERVICE_DIR
    app = service.create_app(directory, stuck_minutes, prefix, code, hub_auth)
    listener = socket.create_server((host, port))  # a taken port is one line here, not uvicorn's log
    base = public_url or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    emit({**service.urls(base, app.state.the_class.config, prefix, hub_auth), "directory": str(directory)}, "json")
    if host not in ("127.0.0.1", "localhost", "::1") and not (public_url or "").startswith("https://"):
        note("learners' tokens cross the network in plain HTTP: put TLS in front of this service for a real class")
    note("serving the class dashboard; Ctrl-C stops it")
    sys.stdout.flush()
    config = uvicorn.Config(app, log_level="warning", access_log=False, http="h11", lifespan="on",
                            timeout_keep_alive=30, proxy_headers=bool(public_url))
    uvicorn.Server(config).run(sockets=[listener])


@workshop.command("join")
@click.argument("url")
@click.option("--name", required=True, help="The name the instructor sees.")
@STATE_DIR
@OUTPUT
@one_line_errors
def workshop_join(url, name, state_dir, output) -> None:
    """Join a workshop: from now on, your check results are sent to its instructor as you produce them.

    Only what a check says is sent (lesson, exercise, status and the check's message), never your code or
    a secret's value. A service that is down never stops a lesson: results wait and are sent later.
    """
    from .workshop import learner

    config = learner.join(url, name, state_dir)
    emit({k: config[k] for k in ("service", "name", "learner")}, output)


@workshop.command("leave")
@STATE_DIR
@OUTPUT
@one_line_errors
def workshop_leave(state_dir, output) -> None:
    """Stop sending check results to the workshop you joined (what was sent stays with the instructor)."""
    from .workshop import learner

    left = learner.leave(state_dir)
    if not left:
        note("you had not joined a workshop")
    emit({"left": left}, output)


@workshop.command("status")
@STATE_DIR
@OUTPUT
@one_line_errors
def workshop_status(state_dir, output) -> None:
    """The workshop you joined, and whether its service answers now."""
    import httpx

    from .workshop import learner

    config = learner.current(state_dir)
    if config is None:
        emit({"joined": False}, output)
        return
    try:
        answering = httpx.get(f"{config['service']}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        answering = False
    emit({"joined": True, "service": config["service"], "name": config["name"], "answering": answering}, output)

# -- leaked secrets ---------------------------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--history", is_flag=True,
              help="PATHS are Git repositories: scan every revision of every file (all branches and tags) "
                   "and report the commit that introduced each finding.")
@click.option("--baseline", type=click.Path(path_type=Path), metavar="FILE",
              help="A detect-secrets baseline (`detect-secrets scan > .secrets.baseline`): the secrets it records "
                   "are not reported. Default: .secrets.baseline in the current folder, if there is one.")
@click.option("--no-baseline", is_flag=True, help="Report every finding, whatever a baseline records.")
@OUTPUT
def scan(paths, history, baseline, no_baseline, output) -> None:
    """Find leaked secrets in files and folders, notebooks cell by cell (or in Git history with --history).

    detect-secrets with kvlab's plugins for Azure formats (connection string
    passwords, SAS signatures, Databricks tokens); the names and version ids
    of Key Vault secrets are no findings. A secret is never printed: only its
    first characters. A line marked `# pragma: allowlist secret` (or after
    one marked `# pragma: allowlist nextline secret`) is skipped, in a
    notebook's cells too. Exit status: 0 clean, 1 secrets found, 2 bad input.
    As a pre-commit hook: id `kvlab-scan` (see .pre-commit-hooks.yaml).
    """
    from . import leaks

    try:
        if baseline is not None and no_baseline:
            raise leaks.ScanError("--baseline and --no-baseline contradict each other: give one")
        known = None
        if not no_baseline:
            known = leaks.Baseline.load(baseline) if baseline else leaks.find_baseline()
        found = leaks.scan_history(*paths, baseline=known) if history else leaks.scan(*paths, baseline=known)
    except leaks.ScanError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if output == "table":
        click.echo(leaks.table(found))
    else:
        emit([f.as_dict() for f in found], output)
    if found:
        one = len(found) == 1
        click.echo(f"error: {len(found)} possible secret{'' if one else 's'} found (shown redacted): remove "
                   f"{'it' if one else 'them'} from the code, and rotate any secret that was ever pushed "
                   "(a deliberate fake: mark its line `# pragma: allowlist secret`)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
