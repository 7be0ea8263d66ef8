"""Where things live in Azure Resource Manager: the subscription, resource groups and resource ids.

A vault or an identity made by the `kvlab` CLI or a lesson lives in the default
group ``kvlab``; one made through Resource Manager (``az keyvault create -g
rg-sales-dev``) lives where it was put. Either way it is the same vault or
identity: the data plane and the token endpoint know it by name, as Azure does
(vault names are global; identity names are kept unique here for the same reason).
"""

from __future__ import annotations

import re
import uuid

from .store import GroupRow, PlacementRow, Store

DEFAULT_GROUP = "kvlab"
DEFAULT_LOCATION = "kvlab"  # the emulator's one region (x-ms-keyvault-region says the same)
SUBSCRIPTION_NAME = "kvlab"
LESSONS_LOCATION = "westeurope"  # the region the lessons' az commands name, for the groups their set-ups make
# Azure: 1-90 letters, digits, underscores, hyphens, periods and parentheses, not ending in a period
GROUP_NAME_RE = re.compile(r"[-\w._()]{0,89}[-\w_()]", re.ASCII)
PROVIDERS = {"vault": "Microsoft.KeyVault/vaults", "identity": "Microsoft.ManagedIdentity/userAssignedIdentities"}


def location_name(text: str) -> str:
    """A location as Resource Manager stores it: ``West Europe`` and ``westeurope`` are one."""
    return re.sub(r"\s+", "", text).lower()


class Resources:
    """The subscription's resource groups and where each vault and identity lives."""

    def __init__(self, store: Store):
        self.store = store
        self.subscription_id = store.meta_or_create("subscription_id", lambda: str(uuid.uuid4()))

    def group_id(self, group: str) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{group}"

    def resource_id(self, kind: str, name: str) -> str:
        """The Azure resource id of a vault or an identity (its group as Resource Manager placed it)."""
        return f"{self.group_id(self.placement(kind, name).resource_group)}/providers/{PROVIDERS[kind]}/{name}"

    def placement(self, kind: str, name: str) -> PlacementRow:
        found = self.store.placement(kind, name)
        return found or PlacementRow(kind, name, DEFAULT_GROUP, DEFAULT_LOCATION, {})

    def place(self, kind: str, name: str, group: str, location: str, tags: dict[str, str]) -> None:
        self.store.put_placement(PlacementRow(kind, name, group, location_name(location), tags))

    # -- resource groups ---------------------------------------------------------

    def group(self, name: str) -> GroupRow | None:
        if name.lower() == DEFAULT_GROUP:
            return self.store.get_group(name) or GroupRow(DEFAULT_GROUP, DEFAULT_LOCATION, {}, 0)
        return self.store.get_group(name)

    def groups(self) -> list[GroupRow]:
        rows = self.store.list_groups()
        if not any(row.name.lower() == DEFAULT_GROUP for row in rows):
            rows.insert(0, GroupRow(DEFAULT_GROUP, DEFAULT_LOCATION, {}, 0))
        return rows

    def put_group(self, name: str, location: str, tags: dict[str, str], now: int) -> tuple[GroupRow, bool]:
        """Create a group (or update its tags); the group and whether it is new."""
        existing = self.group(name)
        created = self.store.put_group(existing.name if existing else name,
                                       existing.location if existing else location_name(location), tags, now)
        return self.group(name), created  # type: ignore[return-value]

    def contents(self, group: str) -> list[PlacementRow]:
        placed = self.store.placements_in(group)
        if group.lower() != DEFAULT_GROUP:
            return placed
        here = {(p.kind, p.name.lower()) for p in placed}
        placed += [PlacementRow("vault", v.name, DEFAULT_GROUP, DEFAULT_LOCATION, {})
                   for v in self.store.list_vaults() if ("vault", v.name.lower()) not in here]
        placed += [PlacementRow("identity", i.name, DEFAULT_GROUP, DEFAULT_LOCATION, {})
                   for i in self.store.list_identities()
                   if i.kind == "userAssigned" and ("identity", i.name.lower()) not in here]
        return placed

    def remove_group(self, name: str) -> None:
        self.store.remove_group(name)
