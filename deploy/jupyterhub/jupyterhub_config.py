"""JupyterHub on one machine for a kvlab workshop (docs/instructors.md).

    KVLAB_CLASS_PASSWORD=... jupyterhub -f deploy/jupyterhub/jupyterhub_config.py

Each learner gets a server of their own, and in it:

- the workbook, pulled into ~/kvlab-workbook by nbgitpuller's ``gitpuller`` at every start (a learner's edits are
  merged, never overwritten);
- a Key Vault emulator of their own: their own state directory (in their home), CA, keys and port, started by the
  repository's ``start`` before JupyterLab (measured against one emulator shared by all: benchmarks/learners.py);
- their check results sent to the class dashboard, which the hub runs as the service ``kvlab-workshop`` at
  /services/kvlab-workshop/, under the learner's hub name (their server's hub token says who they are).

The instructor page, /services/kvlab-workshop/instructor, signs in through the hub: it opens for the hub's admins
(the user ``instructor``) and the members of the group ``instructors`` (add them on the hub's admin page).

Learners log in with a user name of their choice and the class password (``shared-password``). Servers run as
the hub's system user with ``SimpleLocalProcessSpawner``: learners' vaults, tokens and progress are apart, but
their files are not (a terminal can read another home). Where learners must not trust each other, give each a
system user (``LocalProcessSpawner``), a container (DockerSpawner) or a pod (deploy/z2jh/config.yaml).

Settings, from the environment: KVLAB_HUB_URL (default http://127.0.0.1:8000), KVLAB_HUB_HOMES (where learners'
homes go), KVLAB_WORKBOOK and KVLAB_WORKBOOK_BRANCH (the git repository and branch learners get; default this
repository, main), KVLAB_CLASS_PASSWORD.
"""

import os
import shutil
import sys
from pathlib import Path

from kvlab.workshop.records import HUB_SERVICE, INSTRUCT_SCOPE

c = get_config()  # noqa: F821 - JupyterHub's config loader provides it

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parents[1]
BIN = Path(sys.executable).parent  # the hub's Python: jupyterhub, kvlab and gitpuller are installed beside it
HUB_URL = os.environ.get("KVLAB_HUB_URL", "http://127.0.0.1:8000").rstrip("/")
HOMES = Path(os.environ.get("KVLAB_HUB_HOMES", "kvlab-homes")).resolve()
WORKSHOP_PORT = 18480
WORKSHOP_PREFIX = f"/services/{HUB_SERVICE}"
EMULATOR_PORTS = 19000  # a learner's emulator listens on this + twice their hub user id (its proxy, on the next)
CLASS = HOMES.parent / HUB_SERVICE  # the dashboard's folder: the class and its results
ON_DASHBOARD = f"access:services!service={HUB_SERVICE}"

c.JupyterHub.bind_url = HUB_URL
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = os.environ.get("KVLAB_CLASS_PASSWORD")
c.Authenticator.allow_all = True  # anyone with the class password
c.Authenticator.admin_users = {"instructor"}
# every learner may use the dashboard (send their results), and so may their server's token; the instructor scope
# (a custom one) opens its instructor page: the admins' and the group instructors' role
c.JupyterHub.custom_scopes = {INSTRUCT_SCOPE: {"description": "Open the kvlab class dashboard's instructor page."}}
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", ON_DASHBOARD]},
    {"name": "kvlab-instructor", "scopes": [INSTRUCT_SCOPE, ON_DASHBOARD], "users": ["instructor"],
     "groups": ["instructors"]},
]
c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", ON_DASHBOARD]

c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = str(HOMES / "{username}")
c.Spawner.env_keep = ["PATH", "LANG", "LC_ALL"]
c.Spawner.environment = {
    "KVLAB_PORT": lambda spawner: str(EMULATOR_PORTS + 2 * spawner.user.id),
    "KVLAB_WORKSHOP": f"{HUB_URL}{WORKSHOP_PREFIX}/",  # checks go to the dashboard, as the hub user
    "KVLAB_WORKBOOK": os.environ.get("KVLAB_WORKBOOK", str(REPOSITORY)),
    "KVLAB_WORKBOOK_BRANCH": os.environ.get("KVLAB_WORKBOOK_BRANCH", "main"),
}
# pull the workbook into the home, start the learner's emulator, then the single-user server (in the home)
c.Spawner.cmd = ["sh", "-c", 'cd "$HOME" && "$0/gitpuller" "$KVLAB_WORKBOOK" "$KVLAB_WORKBOOK_BRANCH" kvlab-workbook >/dev/null'
                 ' && exec "$HOME/kvlab-workbook/start" "$0/jupyterhub-singleuser" "$@"', str(BIN)]
c.Spawner.default_url = "/lab/tree/kvlab-workbook/notebooks/00-start-here.ipynb"
# terminals start in the emulator's environment (kvlab/terminal.py), as `python3 dev.py lab` arranges
c.Spawner.args = [f"--ServerApp.terminado_settings=shell_command={sys.executable} -m kvlab.terminal"]
if hasattr(os, "geteuid") and os.geteuid() == 0:
    c.Spawner.args.append("--allow-root")  # a hub in a container often runs as root
# the workbook's JupyterLab settings (kvlab/lab-settings.json: no prompt to fetch Jupyter's news from the
# internet), where the learners' JupyterLab, beside this hub, reads a package's overrides
LAB_OVERRIDES = Path(os.environ.get("JUPYTERLAB_DIR") or Path(sys.prefix, "share", "jupyter", "lab"), "settings",
                     "overrides.d")
LAB_OVERRIDES.mkdir(parents=True, exist_ok=True)
shutil.copyfile(REPOSITORY / "kvlab" / "lab-settings.json", LAB_OVERRIDES / "kvlab.json")

c.JupyterHub.services = [{
    "name": HUB_SERVICE,
    "url": f"http://127.0.0.1:{WORKSHOP_PORT}",
    "command": [str(BIN / "kvlab"), "workshop", "serve", "--hub-auth", "--port", str(WORKSHOP_PORT),
                "--prefix", WORKSHOP_PREFIX, "--dir", str(CLASS), "--public-url", HUB_URL],
    "oauth_client_allowed_scopes": [INSTRUCT_SCOPE],  # a signed-in instructor's token says they hold it
    "oauth_no_confirm": True,  # the hub's own service: signing in asks nothing more
    "display": True,
}]

if not shutil.which("configurable-http-proxy"):
    print("jupyterhub_config: configurable-http-proxy is not on PATH (npm install -g configurable-http-proxy)",
          file=sys.stderr)
