"""`from kvlab.databricks import dbutils` in a real kernel (nbclient): values read are [REDACTED] in every output.

Each output path a notebook has (print, stderr, logging, a cell's result, HTML,
Markdown and JSON displays, an updated display, an error and its traceback) is
run once; afterwards the value appears nowhere in the executed notebook, the
ordinary output around it is intact, the intended error still shows its type,
and a transformed value goes out as it is (as on Databricks).
"""

from __future__ import annotations

import json
import secrets
import uuid

import nbformat
import pytest
from databricks.sdk import WorkspaceClient
from nbclient import NotebookClient

CELLS = {
    "print": "print('the password is', password, 'and that is all')",
    "stderr": "import sys\nprint(f'warning: {password}', file=sys.stderr)",
    "logging": "import logging\nlogging.getLogger('etl').error('connecting with %s', password)",
    "result": "password",
    "html": "from IPython.display import HTML, Markdown, JSON, display\ndisplay(HTML(f'<b>{password}</b>'))",
    "markdown": "display(Markdown(f'`{password}`'))",
    "json": "display(JSON({'password': password}))",
    "update": "handle = display('waiting', display_id=True)\nhandle.update(f'now {password}')",
    "bytes": "dbutils.secrets.getBytes(scope, 'db-password').decode()",
    "error": "raise ValueError(f'login failed for {password}')",
    "reversed": "print(password[::-1])",
    "ordinary": "print('rows loaded: 42')",
}


@pytest.fixture(scope="module")
def executed(emulator):
    scope, value = f"redaction-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(24)
    workspace = WorkspaceClient()
    workspace.secrets.create_scope(scope)
    workspace.secrets.put_secret(scope, "db-password", string_value=value)
    notebook = nbformat.v4.new_notebook()
    setup = (f"import kvlab\nkvlab.connect()\nfrom kvlab.databricks import dbutils\nscope = {scope!r}\n"
             "password = dbutils.secrets.get(scope=scope, key='db-password')")
    notebook.cells = [nbformat.v4.new_code_cell(setup)] + [nbformat.v4.new_code_cell(c) for c in CELLS.values()]
    NotebookClient(notebook, kernel_name="python3", timeout=120, allow_errors=True).execute()
    outputs = dict(zip(CELLS, (cell.outputs for cell in notebook.cells[1:])))
    yield value, notebook, outputs
    emulator.delete_workspace_scope(scope)


def text_of(outputs) -> str:
    return json.dumps([dict(o) for o in outputs])


@pytest.mark.parametrize("path", [p for p in CELLS if p not in ("reversed", "ordinary")])
def test_a_value_read_with_dbutils_is_redacted_in_each_output_path(executed, path):
    value, _, outputs = executed
    shown = text_of(outputs[path])
    assert value not in shown
    assert "[REDACTED]" in shown, shown


def test_the_value_appears_nowhere_in_the_executed_notebook(executed):
    value, notebook, _ = executed
    assert value not in nbformat.writes(notebook)


def test_ordinary_output_and_the_shape_of_outputs_are_intact(executed):
    _, _, outputs = executed
    assert [o["text"] for o in outputs["ordinary"]] == ["rows loaded: 42\n"]
    assert outputs["print"][0]["text"] == "the password is [REDACTED] and that is all\n"
    assert outputs["result"][0]["data"]["text/plain"] == "'[REDACTED]'"
    assert outputs["json"][0]["data"]["application/json"] == {"password": "[REDACTED]"}
    error = outputs["error"][0]
    assert (error["output_type"], error["ename"], error["evalue"]) == ("error", "ValueError", "login failed for [REDACTED]")


def test_a_transformed_value_is_not_caught_as_on_databricks(executed):
    value, _, outputs = executed
    assert outputs["reversed"][0]["text"] == value[::-1] + "\n"
