"""Runs Azure CLI commands in one process, as the CLI's own scenario tests do (`get_default_cli().invoke`).

Started with the CLI's Python (`kvlab.azcli.install()`) in a shell's environment. Each
command gets a fresh CLI object, as each ``az`` process would; what it saves is Python
re-importing the CLI every time (1.5 s a command). The environment, and so
AZURE_CONFIG_DIR, is the process's: one driver per signed-in session.

* ``python azure_cli_driver.py``: reads one JSON list of arguments per line on stdin and
  answers one JSON line ``{"code", "stdout", "stderr"}``;
* ``python azure_cli_driver.py --serve SOCKET``: the same over a Unix socket, one command
  (``{"args", "cwd"}``) per connection, for the client a test puts on PATH as ``az`` so that bash lines with nested
  ``$(az ...)`` run unchanged.
"""

import contextlib
import io
import json
import logging
import os
import socket
import sys

from azure.cli.core import get_default_cli


def run(args: list) -> dict:
    out, err = io.StringIO(), io.StringIO()
    # knack sets up its console handlers once per process, on the stderr of that moment: drop them, so this
    # command's are made on this command's stderr (as in a new `az` process)
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in list(getattr(logger, "handlers", [])):
            logger.removeHandler(handler)
    with contextlib.redirect_stderr(err):
        try:
            code = get_default_cli().invoke(args, out_file=out)
        except SystemExit as exc:  # argument errors end this way, as in `az`
            code = exc.code if isinstance(exc.code, int) else 1
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


if len(sys.argv) == 3 and sys.argv[1] == "--serve":
    server = socket.socket(socket.AF_UNIX)
    server.bind(sys.argv[2])
    server.listen()
    print("ready", flush=True)
    while True:
        connection, _ = server.accept()
        with connection:
            request = json.loads(b"".join(iter(lambda c=connection: c.recv(65536), b"")))
            os.chdir(request["cwd"])  # a relative --file is the caller's, as for a process started there
            connection.sendall(json.dumps(run(request["args"])).encode())
else:
    for line in sys.stdin:
        print(json.dumps(run(json.loads(line))), flush=True)
