"""Progress: the progress file, its table and dashboard, `kvlab progress` and `kvlab.progress()`.

Every test uses its own temporary state directory, never the user's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

import kvlab
from kvlab import tracker
from kvlab.checks import all_lessons, lesson_spec
from kvlab.feedback import Result

from runners import kvlab as run_kvlab

TITLES = {"ex1": "Create a SecretClient and take stock", "ex2": "Store your first secret", "ex3": "Read it back without printing it"}
LESSON00 = "Start here: your first secret"


def result(exercise: str, status: str, lesson: str = "00") -> Result:
    return Result(lesson=lesson, exercise=exercise, title=TITLES.get(exercise, exercise), status=status, message="")


@pytest.fixture
def state(tmp_path) -> Path:
    return tmp_path / "state"


def entry(state: Path, exercise: str, lesson: str = "00") -> dict:
    return tracker.load(state)[lesson][exercise]


# -- the progress file -------------------------------------------------------------------


def test_record_keeps_the_latest_and_the_best(state):
    tracker.record(result("ex1", "incorrect"), state)
    first = entry(state, "ex1")
    assert (first["status"], first["best"]) == ("incorrect", "incorrect")
    assert first["time"].endswith("+00:00")

    tracker.record(result("ex1", "correct"), state)
    assert {k: entry(state, "ex1")[k] for k in ("status", "best")} == {"status": "correct", "best": "correct"}

    tracker.record(result("ex1", "not-attempted"), state)  # a fresh run checks it again
    assert {k: entry(state, "ex1")[k] for k in ("status", "best")} == {"status": "not-attempted", "best": "correct"}

    tracker.record(result("ex1", "incorrect"), state)
    assert {k: entry(state, "ex1")[k] for k in ("status", "best")} == {"status": "incorrect", "best": "correct"}


@pytest.mark.parametrize(("statuses", "best"), [
    (["unavailable", "not-attempted"], "not-attempted"),
    (["not-attempted", "unavailable"], "not-attempted"),
    (["incorrect", "not-attempted"], "incorrect"),
    (["not-attempted", "incorrect"], "incorrect"),
    (["unavailable"], "unavailable"),
])
def test_the_best_is_the_highest_status_ever_seen(state, statuses, best):
    for status in statuses:
        tracker.record(result("ex2", status), state)
    assert entry(state, "ex2") | {"time": None} == {"status": statuses[-1], "best": best, "time": None}


def test_exercises_and_lessons_are_kept_apart(state):
    tracker.record(result("ex1", "correct"), state)
    tracker.record(result("ex2", "incorrect"), state)
    tracker.record(result("ex1", "incorrect", lesson="98"), state)
    data = tracker.load(state)
    assert sorted(data) == ["00", "98"]
    assert sorted(data["00"]) == ["ex1", "ex2"]
    assert data["00"]["ex1"]["best"] == "correct"
    assert data["98"]["ex1"]["best"] == "incorrect"


def test_the_file_is_json_written_by_replacing_it(state, monkeypatch):
    tracker.record(result("ex1", "correct"), state)
    path = state / "progress.json"
    text = path.read_text()
    data = json.loads(text)
    assert data == {"00": {"ex1": {"best": "correct", "status": "correct", "time": data["00"]["ex1"]["time"]}}}
    assert text == json.dumps(data, indent=1, sort_keys=True)
    assert [p.name for p in state.iterdir()] == ["progress.json"]  # no temporary file left behind

    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (replaced.append((Path(src), Path(dst))), real_replace(src, dst)))
    tracker.record(result("ex2", "incorrect"), state)
    [(src, dst)] = replaced
    assert dst == path
    assert src.parent == state and src.name.startswith(".progress-")  # same directory: an atomic rename
    assert not src.exists()


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(state, monkeypatch):
    tracker.record(result("ex1", "correct"), state)
    before = (state / "progress.json").read_text()

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    tracker.record(result("ex1", "incorrect"), state)  # never fails the check
    assert (state / "progress.json").read_text() == before
    assert [p.name for p in state.iterdir()] == ["progress.json"]


def test_a_missing_or_broken_file_is_no_progress(state):
    assert tracker.load(state) == {}
    state.mkdir(parents=True, exist_ok=True)
    (state / "progress.json").write_text("{not json")
    assert tracker.load(state) == {}
    (state / "progress.json").write_text("[1, 2]")
    assert tracker.load(state) == {}
    tracker.record(result("ex3", "correct"), state)
    assert entry(state, "ex3")["best"] == "correct"


def test_a_file_of_the_wrong_shape_never_fails_a_check_or_the_table(state):
    state.mkdir(parents=True, exist_ok=True)
    (state / "progress.json").write_text(json.dumps({"00": {"ex1": "correct", "ex2": {"best": "correct"}}, "98": [1]}))
    assert tracker.rows(state)[:2] == [
        {"lesson": "00", "lessonTitle": LESSON00, "exercise": "ex1", "title": TITLES["ex1"], "status": None},
        {"lesson": "00", "lessonTitle": LESSON00, "exercise": "ex2", "title": TITLES["ex2"], "status": "correct"},
    ]
    tracker.record(result("ex1", "correct"), state)
    tracker.record(result("ex1", "correct", lesson="98"), state)
    assert entry(state, "ex1")["best"] == "correct"
    assert entry(state, "ex2")["best"] == "correct"
    assert entry(state, "ex1", lesson="98")["best"] == "correct"


def test_an_unwritable_state_dir_never_fails_a_check(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    tracker.record(result("ex1", "correct"), not_a_dir)
    assert tracker.load(not_a_dir) == {}


# -- rows, summary, text -------------------------------------------------------------------


def expected_rows(statuses: dict[str, str | None]) -> list[dict]:
    return [{"lesson": "00", "lessonTitle": LESSON00, "exercise": e, "title": TITLES[e], "status": statuses.get(e)}
            for e in ("ex1", "ex2", "ex3")]


def test_rows_list_every_exercise_of_every_lesson(state):
    rows = tracker.rows(state)
    assert len(rows) == sum(len(lesson_spec(n).exercises) for n in all_lessons())
    assert [(r["lesson"], r["exercise"]) for r in rows] == [
        (lesson_spec(n).number, e.id) for n in all_lessons() for e in lesson_spec(n).exercises
    ]
    assert {r["status"] for r in rows} == {None}
    assert rows[:3] == expected_rows({})


def test_rows_show_the_best_status_and_ignore_unknown_lessons(state):
    tracker.record(result("ex1", "correct"), state)
    tracker.record(result("ex1", "not-attempted"), state)
    tracker.record(result("ex2", "incorrect"), state)
    tracker.record(result("ex1", "correct", lesson="98"), state)  # no such lesson: not shown
    rows = tracker.rows(state)
    assert rows[:3] == expected_rows({"ex1": "correct", "ex2": "incorrect"})
    assert "98" not in {r["lesson"] for r in rows}
    assert tracker.summary(state)[0] == {"lesson": "00", "title": LESSON00, "correct": 1, "total": 3}


LESSON00_BLOCK = [
    f"Lesson 00 {LESSON00}: 1/3 correct",
    "  [PASS] ex1 Create a SecretClient and take stock",
    "  [FAIL] ex2 Store your first secret",
    "  [    ] ex3 Read it back without printing it",
]


def test_text_is_a_deterministic_table(state):
    assert tracker.text(state).splitlines()[:4] == [
        f"Lesson 00 {LESSON00}: 0/3 correct",
        "  [    ] ex1 Create a SecretClient and take stock",
        "  [    ] ex2 Store your first secret",
        "  [    ] ex3 Read it back without printing it",
    ]
    tracker.record(result("ex1", "correct"), state)
    tracker.record(result("ex2", "incorrect"), state)
    first = tracker.text(state)
    assert first.splitlines()[:4] == LESSON00_BLOCK
    tracker.record(result("ex1", "correct"), state)  # a new time, the same table
    assert tracker.text(state) == first
    tracker.record(result("ex3", "unavailable"), state)
    assert tracker.text(state).splitlines()[3] == "  [SKIP] ex3 Read it back without printing it"


# -- the dashboard ---------------------------------------------------------------------------


def test_the_dashboard_is_text_and_static_html_with_a_bar_per_lesson(state):
    tracker.record(result("ex1", "correct"), state)
    tracker.record(result("ex2", "incorrect"), state)
    dashboard = tracker.Dashboard(state)
    bundle = dashboard._repr_mimebundle_()
    assert sorted(bundle) == ["text/html", "text/plain"]  # no widget view to hide the HTML in an export
    assert bundle["text/plain"] == tracker.text(state)
    assert repr(dashboard) == tracker.text(state)
    page = bundle["text/html"]
    assert page.count("<progress ") == len(all_lessons())
    assert f"Lesson 00 {LESSON00} <progress value='1' max='3'></progress> 1/3" in page
    assert "<tr><td>ex1</td><td>Create a SecretClient and take stock</td><td>Correct</td></tr>" in page
    assert "<tr><td>ex2</td><td>Store your first secret</td><td>Not yet</td></tr>" in page
    assert "<tr><td>ex3</td><td>Read it back without printing it</td><td>Not checked yet</td></tr>" in page


def test_progress_shows_in_a_notebook_exported_to_html(state):
    """What a learner shares or an instructor opens: nbconvert's HTML of an executed notebook."""
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    tracker.record(result("ex1", "correct"), state)
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(f"import kvlab\nkvlab.progress({str(state)!r})"))
    NotebookClient(notebook, kernel_name="python3", timeout=120).execute()
    page, _ = HTMLExporter().from_notebook_node(notebook)
    assert "kvlab-progress" in page
    assert "<td>Create a SecretClient and take stock</td><td>Correct</td>" in page


def test_kvlab_progress_returns_the_dashboard(state, monkeypatch):
    tracker.record(result("ex1", "correct"), state)
    tracker.record(result("ex2", "incorrect"), state)
    dashboard = kvlab.progress(state)
    assert isinstance(dashboard, tracker.Dashboard)
    assert repr(dashboard).splitlines()[:4] == LESSON00_BLOCK

    monkeypatch.setenv("KVLAB_STATE_DIR", str(state))
    default = kvlab.progress()
    assert isinstance(default, tracker.Dashboard)
    assert repr(default).splitlines()[:4] == LESSON00_BLOCK


# -- the CLI ------------------------------------------------------------------------------------




def test_kvlab_progress_prints_json_rows_and_a_table(state, tmp_path):
    tracker.record(result("ex1", "correct"), state)
    tracker.record(result("ex2", "incorrect"), state)
    elsewhere = tmp_path / "elsewhere"  # --state-dir wins over the environment

    rows = json.loads(run_kvlab("progress", "--state-dir", str(state), state=elsewhere, quiet=True).stdout)
    assert rows == tracker.rows(state)
    assert rows[:3] == expected_rows({"ex1": "correct", "ex2": "incorrect"})

    table = run_kvlab("progress", "--state-dir", str(state), "-o", "table", state=elsewhere, quiet=True).stdout
    assert table == tracker.text(state) + "\n"
    assert table.splitlines()[:4] == LESSON00_BLOCK

    empty = json.loads(run_kvlab("progress", state=elsewhere, quiet=True).stdout)
    assert {r["status"] for r in empty} == {None}
    assert not elsewhere.exists()  # reading progress never creates a state directory
