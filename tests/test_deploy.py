"""The Kubernetes set-up (deploy/z2jh/config.yaml): merged over the chart's defaults and validated against its
schema as `helm` does, and consistent with the workbook it deploys."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import click
import jsonschema
import pytest
import yaml

from kvlab.cli import main as kvlab_cli

ROOT = Path(__file__).resolve().parents[1]
CHART = Path(__file__).with_name("spec") / "z2jh"
CONFIG = ROOT / "deploy" / "z2jh" / "config.yaml"
MEASURED_MB = 234  # benchmarks/learners.py: a learner's processes at lesson 05, the heaviest measured


def helm_merge(defaults, values):
    """Helm's coalescing of user values over a chart's: maps merge key by key, a null removes the default,
    anything else (lists included) replaces it."""
    if not (isinstance(defaults, dict) and isinstance(values, dict)):
        return copy.deepcopy(values)
    merged = copy.deepcopy(defaults)
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = helm_merge(defaults.get(key), value)
    return merged


@pytest.fixture(scope="module")
def validator():
    schema = yaml.safe_load((CHART / "values.schema.yaml").read_text())
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def values():
    return helm_merge(yaml.safe_load((CHART / "values.yaml").read_text()), yaml.safe_load(CONFIG.read_text()))


def test_the_config_is_valid_for_the_chart(validator, values):
    problems = sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values))
    assert problems == []


@pytest.mark.parametrize("change", [
    {"singleuser": {"cpu": {"guarantee": "a tenth"}}},  # a string where the chart wants a number of CPUs
    {"hub": {"extraContainer": []}},  # a misspelt key
    {"cull": {"timeout": "an hour"}},
])
def test_the_validation_would_catch_a_mistake(validator, values, change):
    assert list(validator.iter_errors(helm_merge(values, change)))


def mb(quantity: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)([MG]i?)", quantity).groups()
    return float(number) * {"M": 1, "Mi": 1.048576, "G": 1000, "Gi": 1073.741824}[unit]


def test_the_dashboard_and_the_learners_agree_and_learners_fit(values):
    [sidecar] = [c for c in values["hub"]["extraContainers"] if c["name"] == "kvlab-workshop"]
    assert sidecar["image"] == f"{values['singleuser']['image']['name']}:{values['singleuser']['image']['tag']}"
    command = sidecar["command"]
    assert command[:3] == ["kvlab", "workshop", "serve"]
    with click.Context(kvlab_cli) as context:  # the options exist and parse, as `kvlab` would read them
        options = kvlab_cli.commands["workshop"].commands["serve"].make_context("serve", command[3:], parent=context)
    prefix, port = options.params["prefix"], options.params["port"]
    code = {e["name"]: e["value"] for e in sidecar["env"]}["KVLAB_WORKSHOP_CODE"]
    assert values["singleuser"]["extraEnv"]["KVLAB_WORKSHOP"] == f"http://hub:{port}{prefix}/join/{code}"
    assert values["hub"]["services"]["kvlab-workshop"]["url"] == f"http://hub:{port}"
    assert prefix == "/services/kvlab-workshop"  # where JupyterHub's proxy puts a service of that name
    assert values["singleuser"]["cmd"] == "jupyterhub-singleuser"
    assert mb(values["singleuser"]["memory"]["guarantee"]) >= MEASURED_MB
    lesson = values["singleuser"]["defaultUrl"].removeprefix("/lab/tree/kvlab-workbook/")
    assert (ROOT / lesson).exists()
    assert values["cull"]["enabled"] and values["cull"]["timeout"] >= 1800
