"""Runs Azure CLI commands in one process, as the CLI's own scenario tests do (`get_default_cli().invoke`).

Started with the CLI's Python (`kvlab.azcli.install()`) in a shell's environment;
reads one JSON list of arguments per line and answers one JSON line
``{"code", "stdout", "stderr"}``. Each command gets a fresh CLI object, as each
``az`` process would; what it saves is Python re-importing the CLI every time
(1.5 s a command). The environment, and so AZURE_CONFIG_DIR, is the process's:
one driver per signed-in session.
"""

import contextlib
import io
import json
import logging
import sys

from azure.cli.core import get_default_cli

for line in sys.stdin:
    args = json.loads(line)
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
    print(json.dumps({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}), flush=True)
