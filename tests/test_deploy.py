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
from kvlab.workshop import records

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


def test_the_dashboard_signs_people_in_through_the_hub(values):
    """What the hub gives a service it runs, given to the sidecar by hand: the token the chart made for it, its
    OAuth client and callback (JupyterHub's defaults for a service of that name); the instructor's scope declared,
    given to instructors, and allowed in the dashboard's sign-ins; learners' server tokens may use the dashboard."""
    name = records.HUB_SERVICE
    [sidecar] = [c for c in values["hub"]["extraContainers"] if c["name"] == name]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in sidecar["env"]}
    assert env["JUPYTERHUB_API_TOKEN"] == {"secretKeyRef": {"name": "hub", "key": f"hub.services.{name}.apiToken"}}
    assert env["JUPYTERHUB_API_URL"] == "http://127.0.0.1:8081/hub/api"  # the hub, in the same pod
    assert env["JUPYTERHUB_SERVICE_NAME"] == name and env["JUPYTERHUB_CLIENT_ID"] == f"service-{name}"
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == f"/services/{name}/"
    assert env["JUPYTERHUB_OAUTH_CALLBACK_URL"] == f"/services/{name}/oauth_callback"
    config = values["hub"]["config"]
    assert records.INSTRUCT_SCOPE in config["JupyterHub"]["custom_scopes"]
    assert values["hub"]["services"][name]["oauth_client_allowed_scopes"] == [records.INSTRUCT_SCOPE]
    on_dashboard = f"access:services!service={name}"
    roles = values["hub"]["loadRoles"]
    assert on_dashboard in roles["user"]["scopes"] and "self" in roles["user"]["scopes"]
    assert set(roles["kvlab-instructor"]["scopes"]) == {records.INSTRUCT_SCOPE, on_dashboard}
    assert roles["kvlab-instructor"]["groups"] == ["instructors"]
    assert on_dashboard in config["Spawner"]["server_token_scopes"]


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
    assert options.params["hub_auth"]
    assert values["singleuser"]["extraEnv"]["KVLAB_WORKSHOP"] == f"http://hub:{port}{prefix}/"
    service = values["hub"]["services"][records.HUB_SERVICE]
    assert service["url"] == f"http://hub:{port}"
    assert prefix == f"/services/{records.HUB_SERVICE}"  # where JupyterHub's proxy puts a service of that name
    assert values["singleuser"]["cmd"] == "jupyterhub-singleuser"
    assert mb(values["singleuser"]["memory"]["guarantee"]) >= MEASURED_MB
    lesson = values["singleuser"]["defaultUrl"].removeprefix("/lab/tree/kvlab-workbook/")
    assert (ROOT / lesson).exists()
    assert values["cull"]["enabled"] and values["cull"]["timeout"] >= 1800
