"""The lab builder: solutions/ in, labs/ out, on small notebooks made for each test."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
import pytest

from kvlab.labs import MD_STUB, LabError, build, strip_solutions

from runners import kvlab as run_kvlab

ROOT = Path(__file__).resolve().parents[1]


def code(source: str, **kwargs) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, **kwargs)


def markdown(source: str, **kwargs) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(source, **kwargs)


def notebook(*cells, metadata: dict | None = None) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = metadata if metadata is not None else {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for number, cell in enumerate(cells):
        cell.id = f"c{number:02d}"
        nb.cells.append(cell)
    return nb


def workbook(tmp_path: Path, **solutions: nbformat.NotebookNode) -> Path:
    """A workbook folder with solutions/<name>.ipynb for each keyword (underscores become hyphens)."""
    (tmp_path / "solutions").mkdir(exist_ok=True)
    for name, nb in solutions.items():
        nbformat.write(nb, tmp_path / "solutions" / f"{name.replace('_', '-')}.ipynb")
    return tmp_path


def lab_of(root: Path, name: str) -> nbformat.NotebookNode:
    return nbformat.read(root / "labs" / f"{name}.ipynb", as_version=4)


def built_source(*cells) -> list[str]:
    return [cell.source for cell in strip_solutions(notebook(*cells), "t.ipynb").cells]


# -- code regions -------------------------------------------------------------------


def test_a_code_region_becomes_the_exact_stub_and_code_around_it_stays():
    source = (
        "import secrets\n"
        "# BEGIN SOLUTION: Exercise 2 - store a generated value as `first-secret`\n"
        "client.set_secret('first-secret', secrets.token_urlsafe(24))\n"
        "# END SOLUTION\n"
        "print('stored')"
    )
    assert built_source(code(source)) == [
        "import secrets\n"
        "# Exercise 2 - store a generated value as `first-secret`\n"
        "# YOUR CODE HERE\n"
        "raise NotImplementedError('Exercise 2 - store a generated value as `first-secret`')\n"
        "print('stored')"
    ]


def test_the_stub_keeps_the_regions_indentation():
    source = (
        "def read(client):\n"
        "    # BEGIN SOLUTION: Exercise 3 - return the value\n"
        "    return client.get_secret('first-secret').value\n"
        "    # END SOLUTION\n"
        "\n"
        "if True:\n"
        "\t# BEGIN SOLUTION: tabbed\n"
        "\tpass\n"
        "\t# END SOLUTION"
    )
    assert built_source(code(source)) == [
        "def read(client):\n"
        "    # Exercise 3 - return the value\n"
        "    # YOUR CODE HERE\n"
        "    raise NotImplementedError('Exercise 3 - return the value')\n"
        "\n"
        "if True:\n"
        "\t# tabbed\n"
        "\t# YOUR CODE HERE\n"
        "\traise NotImplementedError('tabbed')"
    ]


def test_a_region_without_task_text_gets_a_generic_task():
    [lab] = built_source(code("# BEGIN SOLUTION\nx = 1\n# END SOLUTION"))
    assert lab == (
        "# write the code for this exercise\n"
        "# YOUR CODE HERE\n"
        "raise NotImplementedError('write the code for this exercise')"
    )


def test_the_stub_is_valid_python_that_raises_with_the_task_text():
    task = "Exercise 1 - it's \"quoted\" and has a backslash \\"
    [lab] = built_source(code(f"# BEGIN SOLUTION: {task}\nx = 1\n# END SOLUTION"))
    with pytest.raises(NotImplementedError) as raised:
        exec(compile(lab, "<lab>", "exec"), {})
    assert str(raised.value) == task


def test_only_stub_cells_are_tagged_raises_exception_and_their_own_tags_stay():
    lab = strip_solutions(notebook(
        code("# BEGIN SOLUTION: Exercise 1 - x\nx = 1\n# END SOLUTION", metadata={"tags": ["keep-me"]}),
        code("y = 2", metadata={"tags": ["keep-me"]}),
        markdown("<!-- BEGIN SOLUTION -->\nanswer\n<!-- END SOLUTION -->"),
    ), "t.ipynb")
    assert [c.metadata.get("tags") for c in lab.cells] == [["keep-me", "raises-exception"], ["keep-me"], None]


def test_a_running_stub_shows_a_notice_but_other_not_implemented_errors_keep_their_traceback():
    """In IPython, after set-up: the stub's cell ends in error with a "your turn" notice, not a traceback."""
    from IPython.core.interactiveshell import InteractiveShell

    from kvlab import stubs

    shell = InteractiveShell.instance()
    shown: list = []
    shell.display_pub.publish = lambda data, metadata=None, **kwargs: shown.append(data)
    traced: list = []
    shell.showtraceback = lambda *args, **kwargs: traced.append(args)
    try:
        assert stubs.install()
        [stub] = built_source(code("# BEGIN SOLUTION: Exercise 2 - store it\nx = 1\n# END SOLUTION"))
        result = shell.run_cell(stub)
        assert isinstance(result.error_in_exec, NotImplementedError)  # the cell still fails: Run All needs the tag
        assert [d[stubs.MIME] for d in shown] == [{"task": "Exercise 2 - store it", "exercise": "ex2"}]
        assert traced == []
        result = shell.run_cell("def later():\n    raise NotImplementedError('not a stub')\nlater()")
        assert isinstance(result.error_in_exec, NotImplementedError)
        assert len(traced) == 1 and len(shown) == 1
    finally:
        shell.set_custom_exc((), None)
        InteractiveShell.clear_instance()


def test_several_regions_in_one_cell_each_become_a_stub():
    source = (
        "a = 0\n"
        "# BEGIN SOLUTION: first task\n"
        "a = 1\n"
        "# END SOLUTION\n"
        "b = a\n"
        "#BEGIN SOLUTION - second task\n"
        "b = 2\n"
        "c = 3\n"
        "#END SOLUTION\n"
        "done = True"
    )
    [lab] = built_source(code(source))
    assert lab.split("\n") == [
        "a = 0",
        "# first task", "# YOUR CODE HERE", "raise NotImplementedError('first task')",
        "b = a",
        "# second task", "# YOUR CODE HERE", "raise NotImplementedError('second task')",
        "done = True",
    ]


def test_cells_without_regions_are_copied_unchanged():
    sources = ["import kvlab\nlesson = kvlab.start_lesson('00')", "check('ex1')", "# just a comment: BEGIN nothing"]
    assert built_source(*(code(s) for s in sources)) == sources


def test_a_markdown_region_becomes_the_answer_placeholder():
    source = (
        "## Question\n"
        "Why is a managed identity better than a client secret?\n"
        "<!-- BEGIN SOLUTION -->\n"
        "Nothing to leak: Azure rotates its credentials.\n"
        "No secret in code.\n"
        "<!-- END SOLUTION -->\n"
        "Next question follows."
    )
    assert built_source(markdown(source)) == [
        "## Question\nWhy is a managed identity better than a client secret?\n"
        f"{MD_STUB}\n"
        "Next question follows."
    ]
    assert MD_STUB == "_Your answer here._"


def test_code_markers_in_markdown_and_markdown_markers_in_code_are_left_alone():
    md = "Write `# BEGIN SOLUTION` in a solution cell.\n# BEGIN SOLUTION\n# END SOLUTION"
    py = "html = '''\n<!-- BEGIN SOLUTION -->\nx\n<!-- END SOLUTION -->\n'''"
    assert built_source(markdown(md), code(py)) == [md, py]


def test_markdown_attachments_are_kept():
    image = {"image.png": {"image/png": "iVBORw0KGgo="}}
    cell = markdown("![diagram](attachment:image.png)")
    cell.attachments = image
    lab = strip_solutions(notebook(cell), "t.ipynb")
    assert lab.cells[0].attachments == image
    nbformat.validate(lab)


# -- outputs, metadata, ids ----------------------------------------------------------


def test_outputs_counts_and_unkept_metadata_are_removed_but_tags_stay(tmp_path):
    cell = code(
        "# Parameters\nvault_url = 'emulator'",
        execution_count=7,
        outputs=[nbformat.v4.new_output("stream", name="stdout", text="secret-looking output\n")],
        metadata={"tags": ["parameters"], "editable": False, "deletable": False, "collapsed": True,
                  "scrolled": True, "execution": {"iopub.status.busy": "2026-01-01T00:00:00Z"},
                  "jupyter": {"source_hidden": True}},
    )
    shown = code("lesson", execution_count=8,
                 outputs=[nbformat.v4.new_output("execute_result", data={"text/plain": "Lesson 00"}, execution_count=8)])
    root = workbook(tmp_path, one=notebook(cell, shown, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "version": "3.12.1"},
        "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}},
        "papermill": {"duration": 1.5},
        "toc": {"number_sections": True},
    }))
    build(root)
    lab = lab_of(root, "one")
    assert lab.metadata == {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "version": "3.12.1"},
    }
    first, second = lab.cells
    assert first.metadata == {"tags": ["parameters"], "editable": False, "deletable": False}
    assert second.metadata == {}
    for built in lab.cells:
        assert built.outputs == []
        assert built.execution_count is None
    raw = (root / "labs" / "one.ipynb").read_text(encoding="utf-8")
    assert "secret-looking output" not in raw
    assert "Lesson 00" not in raw
    assert "papermill" not in raw and "widget-state" not in raw


def test_cell_ids_are_the_solutions_and_a_rebuild_changes_nothing(tmp_path):
    root = workbook(tmp_path, lesson=notebook(
        markdown("# Lab"),
        code("# BEGIN SOLUTION: Exercise 1 - x\nx = 1\n# END SOLUTION"),
        code("check('ex1')"),
    ))
    [first] = build(root)
    assert first.lab == root / "labs" / "lesson.ipynb"
    assert first.changed is True
    written = first.lab.read_bytes()
    assert [c.id for c in lab_of(root, "lesson").cells] == ["c00", "c01", "c02"]
    assert written.endswith(b"\n")

    [again] = build(root)
    assert again.changed is False
    assert first.lab.read_bytes() == written
    [checked] = build(root, check=True)
    assert checked.changed is False


def test_a_solution_without_cell_ids_gets_stable_ids(tmp_path):
    (tmp_path / "solutions").mkdir()
    old = {"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# Old"},
        {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": [], "execution_count": None},
    ]}
    (tmp_path / "solutions" / "old.ipynb").write_text(json.dumps(old))
    build(tmp_path)
    written = (tmp_path / "labs" / "old.ipynb").read_bytes()
    assert [c.id for c in lab_of(tmp_path, "old").cells] == ["cell-1", "cell-2"]
    assert [b.changed for b in build(tmp_path)] == [False]
    assert (tmp_path / "labs" / "old.ipynb").read_bytes() == written


def test_the_solution_itself_is_not_changed(tmp_path):
    root = workbook(tmp_path, s=notebook(code("# BEGIN SOLUTION: t\nx = 1\n# END SOLUTION", execution_count=1)))
    before = (root / "solutions" / "s.ipynb").read_bytes()
    build(root)
    assert (root / "solutions" / "s.ipynb").read_bytes() == before


# -- broken markers ------------------------------------------------------------------


@pytest.mark.parametrize(("source", "reason"), [
    ("x = 1\n# END SOLUTION", "broken.ipynb, cell 2, line 2: END SOLUTION without BEGIN SOLUTION"),
    ("# BEGIN SOLUTION: a\nx = 1\n    # BEGIN SOLUTION: b\n# END SOLUTION",
     "broken.ipynb, cell 2, line 3: BEGIN SOLUTION inside another solution region"),
    ("# BEGIN SOLUTION: a\nx = 1", "broken.ipynb, cell 2: BEGIN SOLUTION without END SOLUTION"),
])
def test_broken_code_markers_name_the_file_and_cell(tmp_path, source, reason):
    root = workbook(tmp_path, broken=notebook(markdown("# Title"), code(source)))
    with pytest.raises(LabError) as raised:
        build(root)
    assert str(raised.value) == reason
    assert not (root / "labs" / "broken.ipynb").exists()


def test_broken_markdown_markers_name_the_file_and_cell(tmp_path):
    root = workbook(tmp_path, md=notebook(code("x = 1"), code("y = 2"), markdown("Q?\n<!-- BEGIN SOLUTION -->\nA.")))
    with pytest.raises(LabError, match=r"^md\.ipynb, cell 3: BEGIN SOLUTION without END SOLUTION$"):
        build(root)


def test_an_unreadable_solution_is_a_lab_error(tmp_path):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "bad.ipynb").write_text("{not json")
    with pytest.raises(LabError, match="bad.ipynb: not a readable notebook"):
        build(tmp_path)


def test_no_solutions_folder_is_a_lab_error(tmp_path):
    with pytest.raises(LabError, match="no solutions/ folder"):
        build(tmp_path)


# -- staleness -----------------------------------------------------------------------


def test_a_lab_whose_solution_was_deleted_is_removed(tmp_path):
    root = workbook(tmp_path, keep=notebook(code("a = 1")), gone=notebook(code("b = 2")))
    build(root)
    assert sorted(p.name for p in (root / "labs").iterdir()) == ["gone.ipynb", "keep.ipynb"]
    (root / "solutions" / "gone.ipynb").unlink()

    checked = build(root, check=True)
    assert [(r.lab.name, r.changed) for r in checked] == [("keep.ipynb", False), ("gone.ipynb", True)]
    assert (root / "labs" / "gone.ipynb").exists()  # --check changes nothing

    results = build(root)
    assert [(r.lab.name, r.changed) for r in results] == [("keep.ipynb", False), ("gone.ipynb", True)]
    assert sorted(p.name for p in (root / "labs").iterdir()) == ["keep.ipynb"]


def test_check_reports_a_changed_solution_without_writing(tmp_path):
    root = workbook(tmp_path, s=notebook(code("x = 1")))
    build(root)
    before = (root / "labs" / "s.ipynb").read_bytes()
    workbook(tmp_path, s=notebook(code("x = 2")))
    [result] = build(root, check=True)
    assert result.changed is True
    assert (root / "labs" / "s.ipynb").read_bytes() == before
    [result] = build(root)
    assert result.changed is True
    assert lab_of(root, "s").cells[0].source == "x = 2"


def kvlab(*args: str) -> subprocess.CompletedProcess:
    return run_kvlab(*args, check=False)


def test_cli_build_writes_labs_and_check_tells_stale_from_current(tmp_path):
    root = workbook(tmp_path, lesson=notebook(code("# BEGIN SOLUTION: Exercise 1 - x\nx = 1\n# END SOLUTION")))

    built = kvlab("labs", "build", "--root", str(root))
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout) == [{"lab": str(root / "labs" / "lesson.ipynb"), "changed": True}]
    assert lab_of(root, "lesson").cells[0].source.endswith("raise NotImplementedError('Exercise 1 - x')")

    current = kvlab("labs", "build", "--root", str(root), "--check")
    assert current.returncode == 0, current.stderr
    assert current.stderr == ""
    assert json.loads(current.stdout) == [{"lab": str(root / "labs" / "lesson.ipynb"), "changed": False}]

    workbook(tmp_path, lesson=notebook(code("# BEGIN SOLUTION: Exercise 1 - y\ny = 1\n# END SOLUTION")))
    stale = kvlab("labs", "build", "--root", str(root), "--check")
    assert stale.returncode == 1
    lines = stale.stderr.strip().splitlines()
    assert lines == [f"error: labs/ is stale ({root / 'labs' / 'lesson.ipynb'}); run: kvlab labs build"]
    assert "Traceback" not in stale.stderr
    assert "NotImplementedError('Exercise 1 - x')" in (root / "labs" / "lesson.ipynb").read_text()  # unchanged


def test_cli_build_reports_broken_markers_in_one_line(tmp_path):
    root = workbook(tmp_path, broken=notebook(code("# BEGIN SOLUTION: a\nx = 1")))
    result = kvlab("labs", "build", "--root", str(root))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: broken.ipynb, cell 1: BEGIN SOLUTION without END SOLUTION"]


# -- this repository -----------------------------------------------------------------


def test_the_repositorys_labs_are_current():
    """Fails when solutions/ changed and labs/ was not rebuilt: run `kvlab labs build`."""
    results = build(ROOT, check=True)
    assert results, "no solutions found"
    assert [str(r.lab.relative_to(ROOT)) for r in results if r.changed] == []
    assert sorted(r.lab.name for r in results) == sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb"))


def test_the_repositorys_labs_have_one_stub_per_exercise():
    from kvlab.checks import lesson_spec

    for path in sorted((ROOT / "labs").glob("*.ipynb")):
        lab = nbformat.read(path, as_version=4)
        stubs = [c.source for c in lab.cells if c.cell_type == "code" and "raise NotImplementedError(" in c.source]
        spec = lesson_spec(path.name[:2])
        assert len(stubs) == len(spec.exercises), path.name
        for exercise, stub in zip(spec.exercises, stubs):
            assert f"Exercise {exercise.id[2:]} " in stub
        assert all(c.get("outputs", []) == [] for c in lab.cells)


# -- refreshing guided notebooks' outputs -------------------------------------------------------


def test_nbval_sanitises_exactly_what_refresh_normalises():
    import configparser

    from kvlab.labs import VOLATILE

    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tests" / "nbval-sanitize.cfg")
    assert {name: config[name]["regex"] for name in config.sections()} == VOLATILE


def test_normalising_merges_streams_and_gives_each_volatile_value_one_stable_stand_in():
    from kvlab.labs import normalise_outputs

    def executed(version_a: str, version_b: str, split: bool) -> nbformat.NotebookNode:
        text = f"set {version_a}\nthen {version_b}\nagain {version_a} on localhost:40123\n"
        cut = text.index("then")
        streams = ([text[:cut], text[cut:]] if split else [text])
        cell = code("print(...)")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=s) for s in streams]
        cell.outputs.append(nbformat.v4.new_output(
            "display_data", data={"text/plain": f"client {uuid_a}"}))
        return notebook(cell)

    uuid_a = "177a7666-3469-400a-900e-be8aef3bb9e6"
    first = executed("558fb7dc4bf339971ff2ad4c3badd797", "33f76ccaebe91bb9c92d436193500de0", split=False)
    second = executed("6e2fd46ee9832d47a332dd5ee8518e4d", "ae966bb1739075bad9552eb9bcaec317", split=True)
    for nb in (first, second):
        normalise_outputs(nb, seed="03.ipynb")
    assert nbformat.writes(first) == nbformat.writes(second)
    [stream, shown] = first.cells[0].outputs
    words = stream.text.split()
    assert words[1] == words[5] != words[3]  # the same version keeps its stand-in, another gets its own
    assert len(words[1]) == 32 and "localhost:18443" in stream.text
    assert shown.data["text/plain"] != f"client {uuid_a}"
