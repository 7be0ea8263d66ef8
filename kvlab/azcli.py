"""The real Azure CLI against the emulator: the cloud ``kvlab env`` registers for it.

A shell prepared by ``kvlab env`` has ``AZURE_CONFIG_DIR`` pointing into the
state directory, so ``az`` there keeps its clouds, profile and tokens apart from
the learner's ``~/.azure``. In that folder the emulator is registered as the
cloud ``kvlab`` and made the active one, which is what

    az cloud register -n kvlab --endpoint-resource-manager https://management.kvlab.localhost:<port>/
    az cloud set -n kvlab

would record (the CLI reads the same ``GET /metadata/endpoints`` answer, `arm.cloud_metadata`).
It is written here instead so a shell is ready without running ``az``. Then:

    az login --identity        # the learner (an identity's client id: --client-id)
    az keyvault create --name kv-sales-dev --resource-group kvlab --enable-rbac-authorization true

``az cloud set -n AzureCloud`` in the same folder switches to Azure; ``kvlab env``
re-registers the emulator's endpoints (its port may have changed) but never takes
the choice of cloud back.

The CLI itself is not a dependency of the workbook (367 MB): the ``az`` command
this package installs is `main`, which on first use installs the pinned CLI
(``azure-cli.txt``, every package pinned) into an environment of its own,
``<venv>/azure-cli``, with uv (seconds, where pip takes a minute), and then runs
it unmodified. Tests run it through that same door.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import time
from pathlib import Path

from .emulator.arm import CLOUD, HOST, cloud_metadata

CLOUDS_FILE = "clouds.config"  # the CLI's own names, in AZURE_CONFIG_DIR
CONFIG_FILE = "config"


def cloud_endpoints(port: int) -> dict[str, str]:
    """The cloud's settings as the CLI stores them (``endpoint_*``/``suffix_*``), from the metadata ARM serves."""
    meta = cloud_metadata(f"https://{HOST}:{port}", port)
    audience = meta["authentication"]["audiences"][0]
    return {
        "endpoint_active_directory": meta["authentication"]["loginEndpoint"],
        "endpoint_active_directory_resource_id": audience,
        "endpoint_management": audience,
        "endpoint_resource_manager": meta["resourceManager"],
        "endpoint_microsoft_graph_resource_id": meta["microsoftGraphResourceId"],
        "endpoint_portal": meta["portal"],
        "suffix_keyvault_dns": "." + meta["suffixes"]["keyVaultDns"],
    }


def register_cloud(config_dir: Path, port: int) -> None:
    """Register (or refresh) the cloud ``kvlab`` in ``config_dir``; make it active unless a cloud was chosen."""
    clouds = configparser.ConfigParser()
    clouds.read(config_dir / CLOUDS_FILE)
    if not clouds.has_section(CLOUD):
        clouds.add_section(CLOUD)
    for key, value in cloud_endpoints(port).items():  # other keys (the CLI's chosen subscription) stay
        clouds.set(CLOUD, key, value)
    _write(config_dir / CLOUDS_FILE, clouds)
    config = configparser.ConfigParser()
    config.read(config_dir / CONFIG_FILE)
    before = {section: dict(config[section]) for section in config.sections()}
    # The CLI's defaults, where the learner has not set them (`az config set`): this cloud; no usage data sent
    # from a practice profile; no survey prompts between a lesson's commands.
    for section, option, value in (("cloud", "name", CLOUD), ("core", "collect_telemetry", "no"),
                                   ("core", "survey_message", "no")):
        if not config.has_section(section):
            config.add_section(section)
        if not config.has_option(section, option):
            config.set(section, option, value)
    if {section: dict(config[section]) for section in config.sections()} != before:
        _write(config_dir / CONFIG_FILE, config)


def _write(path: Path, parser: configparser.ConfigParser) -> None:
    temporary = path.with_name(path.name + ".kvlab-tmp")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        parser.write(out)
    os.replace(temporary, path)


# -- the CLI itself --------------------------------------------------------------------

REQUIREMENTS = Path(__file__).with_name("azure-cli.txt")
HOME = Path(sys.prefix) / "azure-cli"  # an environment of its own, inside the workbook's
BIN = HOME / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = HOME / ".kvlab-requirements"
LOCK_WAIT = 600.0  # seconds another process's install may take before we give up


class InstallError(RuntimeError):
    """The CLI could not be installed (said in one line)."""


def installed() -> bool:
    return PYTHON.exists() and STAMP.exists() and STAMP.read_bytes() == REQUIREMENTS.read_bytes()


def install(say=lambda message: None) -> Path:
    """The CLI's Python, installing the pinned CLI first if it is missing or pinned differently.

    Safe to call from several processes at once (pytest workers, a terminal): one installs, the others wait.
    """
    if installed():
        return PYTHON
    HOME.parent.mkdir(parents=True, exist_ok=True)
    with _Lock(HOME.with_name("azure-cli.lock")):
        if installed():  # another process finished while we waited
            return PYTHON
        version = next((line.split("==")[1].strip() for line in REQUIREMENTS.read_text().splitlines()
                        if line.startswith("azure-cli==")), "?")
        say(f"installing the Azure CLI {version} into {HOME} (once; about 10 s)")
        uv = [sys.executable, "-m", "uv"]
        for step in ([*uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(HOME)],
                     [*uv, "pip", "install", "--quiet", "--python", str(PYTHON), "-r", str(REQUIREMENTS)]):
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
                raise InstallError(f"could not install the Azure CLI: {last}")
        STAMP.write_bytes(REQUIREMENTS.read_bytes())
    return PYTHON


class _Lock:
    """An exclusive lock on a file, held by this process (fcntl on POSIX, msvcrt on Windows)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.file = open(self.path, "a+b")
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                if os.name == "nt":
                    import msvcrt
                    msvcrt.locking(self.file.fileno(), msvcrt.LK_NBLCK, 1)
                else:
                    import fcntl
                    fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise InstallError(f"another process has been installing the Azure CLI for over "
                                       f"{int(LOCK_WAIT)} s (lock: {self.path})") from None
                time.sleep(0.2)

    def __exit__(self, *exc):
        self.file.close()  # closing releases the lock


# `az login` arguments that sign in without a browser or a device code: the ones the emulator can answer
NON_INTERACTIVE = {"--identity", "-i", "--service-principal", "--federated-token", "--help", "-h"}


def active_cloud() -> str | None:
    """The cloud the CLI will use: AZURE_CONFIG_DIR's (else ~/.azure's) choice, None if none was made."""
    config = configparser.ConfigParser()
    config.read(Path(os.environ.get("AZURE_CONFIG_DIR") or Path.home() / ".azure") / CONFIG_FILE)
    return config.get("cloud", "name", fallback=None)


def main() -> None:
    """``az``: the pinned Azure CLI, installed on first use, run unmodified with these arguments.

    One thing is said before the CLI runs: plain ``az login`` against the emulator's cloud, which has no
    sign-in page (the CLI would fail with a long traceback while looking for one)."""
    args = sys.argv[1:]
    if args[:1] == ["login"] and not NON_INTERACTIVE & set(args) and active_cloud() == CLOUD:
        sys.exit("az login: the emulator has no sign-in page; here `az login --identity` signs you in (as the "
                 "learner; an identity with --client-id <its client id>). For Azure: az cloud set -n AzureCloud.")
    try:
        python = install(lambda message: print(f"[kvlab] {message}", file=sys.stderr, flush=True))
    except InstallError as exc:
        sys.exit(f"az: {exc}")
    argv = [str(python), "-m", "azure.cli", *args]
    env = {**os.environ, "AZ_INSTALLER": os.environ.get("AZ_INSTALLER", "PIP")}  # as the CLI's own launcher sets
    # A connected Python process (`kvlab.connect`, kvlab.trust) gives requests its certificates as a directory; the
    # CLI accepts only a file there: the bundle file with the same certificates.
    bundle = env.get("REQUESTS_CA_BUNDLE")
    if bundle and os.path.isdir(bundle) and os.path.isfile(env.get("SSL_CERT_FILE", "")):
        env["REQUESTS_CA_BUNDLE"] = env["SSL_CERT_FILE"]
    if os.name == "nt":  # no exec on Windows that keeps the console's process
        sys.exit(subprocess.call(argv, env=env))
    os.execve(argv[0], argv, env)
