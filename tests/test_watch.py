"""Checks judge what happened, in a real IPython kernel (nbclient), as a learner's notebook runs.

The output watch (kvlab.watch): a secret's value printed, displayed, logged or
left as a cell's result fails the check, naming the cell; answers written in
another way than the solution (aliases, module imports) pass; a value that
looks chosen rather than generated fails.
"""

from __future__ import annotations

import base64
from types import SimpleNamespace

import nbformat
import pytest
from nbclient import NotebookClient

from kvlab.checks import all_lessons
from kvlab.feedback import MIME
from kvlab.watch import Watch

SET_UP = 'import kvlab\nlesson = kvlab.start_lesson("00", vault_url="emulator")\ncheck = lesson.check'
CLIENT = (
    "from azure.identity import DefaultAzureCredential\n"
    "from azure.keyvault.secrets import SecretClient\n"
    "client = SecretClient(vault_url=lesson.vault_url(), credential=DefaultAzureCredential())"
)
STORE = "import secrets\nclient.set_secret('first-secret', secrets.token_urlsafe(24), content_type='text/plain')"
READ = "# Exercise 3 - read\nvalue = client.get_secret('first-secret').value"


def run(*cells: str) -> dict[str, dict]:
    """Run cells in a fresh kernel; the outcome of each `check(...)` cell, by exercise (the last one wins)."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in (SET_UP, *cells)]
    NotebookClient(notebook, kernel_name="python3", timeout=120).execute()
    outcomes = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if MIME in output.get("data", {}):
                result = output["data"][MIME]
                outcomes[result["exercise"]] = result
    return outcomes


def test_a_right_answer_written_another_way_is_correct(emulator):
    outcomes = run(
        "import azure.keyvault.secrets as kv\nfrom azure.identity import DefaultAzureCredential as DAC\n"
        "client = kv.SecretClient(lesson.vault_url(), DAC())\n"
        "import datetime as dt\nnow = dt.datetime.now(dt.timezone.utc)\n"
        "stale = {p.name for p in client.list_properties_of_secrets() if (p.expires_on or now) < now}",
        'check("ex1")',
        "import secrets as s\nclient.set_secret(name='first-secret', value=s.token_hex(20), content_type='text/plain',\n"
        "                  expires_on=now + dt.timedelta(days=90))",
        'check("ex2")',
        "secret = client.get_secret('first-secret')\nvalue = secret.value",
        'check("ex3")',
    )
    assert {ex: r["status"] for ex, r in outcomes.items()} == {"ex1": "correct", "ex2": "correct", "ex3": "correct"}


@pytest.mark.parametrize("show, where", [
    ("print(value)", "in the output of your cell that starts `print(value)`"),
    ("value", "in the result of your cell that starts `value`"),
    ("from IPython.display import display\ndisplay({'pw': value})", "in the displayed output of your cell"),
    ("import logging\nlogging.warning('connected with %s', value)", "in the error output of your cell that starts `import logging`"),
    ("print(f'pw={value[:10]}' + value[10:])", "in the output of your cell"),
])
def test_a_secret_shown_in_any_output_fails_the_check_and_says_where(emulator, show, where):
    outcomes = run(CLIENT, STORE, READ, show, 'check("ex3")')
    assert outcomes["ex3"]["status"] == "incorrect"
    assert outcomes["ex3"]["message"].startswith("The value of `first-secret` showed " + where)


def test_only_part_of_a_secret_or_its_length_is_not_a_leak(emulator):
    outcomes = run(CLIENT, STORE, READ, "print(len(value), value[:3] + '...')", 'check("ex3")')
    assert outcomes["ex3"]["status"] == "correct", outcomes["ex3"]["message"]


def test_a_chosen_value_fails_even_when_it_is_not_typed_out(emulator):
    outcomes = run(CLIENT, "client.set_secret('first-secret', 'pass' + 'word' + '1234' * 3, content_type='text/plain')",
                   'check("ex2")')
    assert outcomes["ex2"]["status"] == "incorrect"
    assert "looks chosen, not generated" in outcomes["ex2"]["message"]


def test_a_typed_value_fails(emulator):
    outcomes = run(CLIENT, "client.set_secret('first-secret', 'Xq7#mK2!vR9@pL4$wN8&zT5', content_type='text/plain')"
                   "  # pragma: allowlist secret", 'check("ex2")')
    assert outcomes["ex2"]["status"] == "incorrect"
    assert "typed into your code" in outcomes["ex2"]["message"]


def test_a_cell_run_again_replaces_what_it_showed():
    """JupyterLab sends each cell's id: a fixed cell run again no longer counts its old output."""
    watch = Watch()
    watch.pre_run_cell(SimpleNamespace(raw_cell="print(value)", cell_id="cell-7"))
    watch.add("output", "s3cret-value-123\n")
    watch.post_run_cell(None)
    assert [s.secret for s in watch.sightings({"pw": ["s3cret-value-123"]})] == ["pw"]
    watch.pre_run_cell(SimpleNamespace(raw_cell="print(len(value))", cell_id="cell-7"))
    watch.add("output", "16\n")
    watch.post_run_cell(None)
    assert watch.sightings({"pw": ["s3cret-value-123"]}) == []


VALUE = "s3cret-value-1234567890"  # pragma: allowlist secret


@pytest.mark.parametrize("shown, how", [
    (VALUE, ""),
    (VALUE[::-1], "reversed"),
    (base64.b64encode(VALUE.encode()).decode(), "Base64-encoded"),
    (VALUE.encode().hex(), "hex-encoded"),
    (str(list(VALUE)), "one character at a time"),
    (VALUE[:12], "in part"),
])
def test_a_value_is_seen_plain_or_disguised(shown, how):
    watch = Watch()
    watch.add("output", f"the key: {shown}\n")
    [sighting] = watch.sightings({"pw": [VALUE]})
    assert sighting.how == how
    assert sighting.describe().startswith("The value of `pw` showed " + (f"{how} in" if how else "in"))


def test_a_whole_value_is_named_whole_when_an_older_version_shares_its_first_half():
    """Connection strings of two versions share host, port and login: printing the new one shows it whole."""
    older, newer = (f"host=127.0.0.1;port=5432;database=orders;uid=app;password={p}"  # pragma: allowlist secret
                    for p in ("fake-old-password-1", "fake-new-password-2"))
    watch = Watch()
    watch.add("output", newer + "\n")
    [sighting] = watch.sightings({"db": [older, newer]})
    assert sighting.how == ""


def test_ordinary_output_is_not_taken_for_a_disguised_value():
    watch = Watch()
    watch.add("output", "stored 3 secrets; version a1b2c3d4e5f60718293a4b5c6d7e8f90; secret-value\n")
    assert watch.sightings({"pw": [VALUE]}) == []


def test_a_stub_waits_until_its_own_cell_runs_something_else():
    """In JupyterLab (cell ids): the stub's notice marks its exercise as not attempted, whatever the cell says later."""
    from kvlab import stubs

    watch = Watch()
    assert watch.pending_stubs() is None  # no cell ids seen: the checks fall back to reading the cells
    watch.pre_run_cell(SimpleNamespace(raw_cell="# Exercise 2 - store it\nraise NotImplementedError(...)", cell_id="c9"))
    watch.message({"msg_type": "display_data", "content": {"data": {stubs.MIME: {"task": "Exercise 2 - store it",
                                                                                  "exercise": "ex2"}}}})
    watch.post_run_cell(None)
    assert watch.pending_stubs() == {"ex2"}
    watch.pre_run_cell(SimpleNamespace(raw_cell="client.set_secret('first-secret', token)", cell_id="c9"))  # comment gone
    watch.post_run_cell(None)
    assert watch.pending_stubs() == set()


def test_a_wrong_exercise_or_lesson_name_is_one_line_in_a_real_kernel(emulator):
    """check('ex9'), hint('ex0'), solution('4'), start_lesson('09'): one line each, no traceback into kvlab."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in (
        SET_UP, "check('ex9')", "lesson.hint('ex0')", "lesson.solution('4')",
        "kvlab.start_lesson('09')", "print('still here')")]
    NotebookClient(notebook, kernel_name="python3", timeout=120, allow_errors=True).execute()
    errors = [[o for o in cell.outputs if o["output_type"] == "error"] for cell in notebook.cells[1:5]]
    assert [e[0]["traceback"] for e in errors] == [
        ["Unknown: lesson 00 has no exercise 'ex9'; its exercises are 'ex1', 'ex2', 'ex3'"],
        ["Unknown: lesson 00 has no exercise 'ex0'; its exercises are 'ex1', 'ex2', 'ex3'"],
        ["Unknown: lesson 00 has no exercise '4'; its exercises are 'ex1', 'ex2', 'ex3'"],
        [f"Unknown: there is no lesson 09; lessons: {', '.join(all_lessons())}"],
    ]
    assert notebook.cells[5].outputs[0]["text"] == "still here\n"


def test_an_emulator_only_lesson_against_a_real_vault_says_so_in_one_line():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(
        "import kvlab\nlesson = kvlab.start_lesson('04', vault_url='https://kv-real.vault.azure.net/')")]
    NotebookClient(notebook, kernel_name="python3", timeout=120, allow_errors=True).execute()
    [error] = [o for o in notebook.cells[0].outputs if o["output_type"] == "error"]
    assert len(error["traceback"]) == 1
    assert error["traceback"][0].startswith("EmulatorOnly: lesson 04 runs on the emulator only: its Databricks workspace")
    assert error["traceback"][0].endswith('Set vault_url = "emulator" in the parameters cell.')
