"""What a fresh set-up installs and prints: the learner's set-up has everything the workbook uses, quietly."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs it there
    import tomli as tomllib

import nbformat
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def core_distributions() -> set[str]:
    """The distributions `python3 dev.py lab` installs: kvlab's own dependencies, no test extra."""
    return {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}


def top_level_imports(source: str) -> set[str]:
    """Modules a piece of learner-facing code imports (IPython magics and shell lines dropped)."""
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def learner_code() -> dict[str, str]:
    """Every code cell of every notebook, lab and solution, and every Python block of the README."""
    code = {}
    for folder in ("notebooks", "labs", "solutions"):
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            for number, cell in enumerate(notebook.cells, 1):
                if cell.cell_type == "code":
                    code[f"{folder}/{path.name}, cell {number}"] = cell.source
    readme = (ROOT / "README.md").read_text()
    for number, block in enumerate(re.findall(r"```python\n(.*?)```", readme, re.S), 1):
        code[f"README.md, Python block {number}"] = block
    return code


def test_everything_the_workbook_and_readme_import_is_installed_by_the_learners_set_up():
    installed_by = packages_distributions()
    core = core_distributions() | {"kvlab"}
    missing = []
    for where, source in learner_code().items():
        for module in sorted(top_level_imports(source)):
            if module in sys.stdlib_module_names:
                continue
            distributions = {canonicalize_name(d) for d in installed_by.get(module, [])}
            if not distributions & core:
                missing.append(f"{where}: import {module} ({', '.join(sorted(distributions)) or 'not installed'})")
    assert missing == []


def test_the_readme_dataframe_promise_is_learner_code():
    """The README promises `pandas.DataFrame(lab.audit())`: that line is in a block this test reads."""
    assert any("pandas" in top_level_imports(s) for w, s in learner_code().items() if w.startswith("README"))


def test_the_package_metadata_builds_without_deprecation_warnings():
    """A fresh set-up prints only kvlab's own progress lines, not setuptools' complaints about our metadata."""
    run = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--quiet", "-e", str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    complaints = [line for line in run.stderr.splitlines() if "Warning" in line and "Location" not in line]
    assert complaints == []
