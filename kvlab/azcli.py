"""The real Azure CLI against the emulator: the cloud ``kvlab env`` registers for it.

A shell prepared by ``kvlab env`` has ``AZURE_CONFIG_DIR`` pointing into the
state directory, so ``az`` there keeps its clouds, profile and tokens apart from
the learner's ``~/.azure``. In that folder the emulator is registered as the
cloud ``kvlab`` and made the active one, which is what

    az cloud register -n kvlab --endpoint-resource-manager https://management.kvlab.localhost:<port>/
    az cloud set -n kvlab

would record (the CLI reads the same ``GET /metadata/endpoints`` answer, `arm.cloud_metadata`).
It is written here instead so a shell is ready without running ``az``. Then:

    az login --identity        # the learner (an identity's client id: --client-id)
    az keyvault create --name kv-sales-dev --resource-group kvlab --enable-rbac-authorization true

``az cloud set -n AzureCloud`` in the same folder switches to Azure; ``kvlab env``
re-registers the emulator's endpoints (its port may have changed) but never takes
the choice of cloud back.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path

from .emulator.arm import CLOUD, HOST, cloud_metadata

CLOUDS_FILE = "clouds.config"  # the CLI's own names, in AZURE_CONFIG_DIR
CONFIG_FILE = "config"


def cloud_endpoints(port: int) -> dict[str, str]:
    """The cloud's settings as the CLI stores them (``endpoint_*``/``suffix_*``), from the metadata ARM serves."""
    meta = cloud_metadata(f"https://{HOST}:{port}", port)
    audience = meta["authentication"]["audiences"][0]
    return {
        "endpoint_active_directory": meta["authentication"]["loginEndpoint"],
        "endpoint_active_directory_resource_id": audience,
        "endpoint_management": audience,
        "endpoint_resource_manager": meta["resourceManager"],
        "endpoint_microsoft_graph_resource_id": meta["microsoftGraphResourceId"],
        "endpoint_portal": meta["portal"],
        "suffix_keyvault_dns": "." + meta["suffixes"]["keyVaultDns"],
    }


def register_cloud(config_dir: Path, port: int) -> None:
    """Register (or refresh) the cloud ``kvlab`` in ``config_dir``; make it active unless a cloud was chosen."""
    clouds = configparser.ConfigParser()
    clouds.read(config_dir / CLOUDS_FILE)
    if not clouds.has_section(CLOUD):
        clouds.add_section(CLOUD)
    for key, value in cloud_endpoints(port).items():  # other keys (the CLI's chosen subscription) stay
        clouds.set(CLOUD, key, value)
    _write(config_dir / CLOUDS_FILE, clouds)
    config = configparser.ConfigParser()
    config.read(config_dir / CONFIG_FILE)
    if not config.has_option("cloud", "name"):
        if not config.has_section("cloud"):
            config.add_section("cloud")
        config.set("cloud", "name", CLOUD)
        _write(config_dir / CONFIG_FILE, config)


def _write(path: Path, parser: configparser.ConfigParser) -> None:
    temporary = path.with_name(path.name + ".kvlab-tmp")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        parser.write(out)
    os.replace(temporary, path)
