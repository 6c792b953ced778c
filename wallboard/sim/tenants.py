"""Tenants and their extensions, behind the secret token (/v1/tenant...)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from wallboard.sim.roster import make_uuid

PROXY_HOST = "pbx01.tel4vn.com"
PROXY_PORT = "50061"
_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


@dataclass(slots=True)
class Tenant:
    tenant_id: str
    uuid: str
    domain: str
    enabled: bool = True
    admin: dict[str, str] = field(default_factory=dict)  # the "user" of the create answer
    extensions: dict[str, dict[str, str]] = field(default_factory=dict)  # made through the API

    @property
    def api_key(self) -> str:
        return self.admin["api_key"]

    def describe(self, base_url: str) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "tenant_url": f"{base_url}/v1/tenant/{self.uuid}",
            "outbound_proxy": f"{PROXY_HOST}:{PROXY_PORT}",
            "port": PROXY_PORT,
            "transports": "both",
            "wss": f"wss://{PROXY_HOST}",
        }


class TenantBook:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.tenants: dict[str, Tenant] = {}

    def create(self, tenant_id: str, *, domain: str | None = None, api_key: str | None = None) -> Tenant | None:
        """None when the tenant exists already. Without `domain` or `api_key`, the PBX's own
        (`<id>.tel4vn.com`, a fresh uuid), as the reference shows."""
        if self.find(tenant_id) is not None:
            return None
        tenant = Tenant(tenant_id, make_uuid(self.rng), domain or f"{tenant_id}.tel4vn.com")
        generated = make_uuid(self.rng)
        tenant.admin = {
            "api_key": api_key or generated,
            "enabled": "true",
            "group": "admin",
            "password": "".join(self.rng.choices(_PASSWORD_ALPHABET, k=12)),
            "user_id": make_uuid(self.rng),
            "username": "admin",
        }
        self.tenants[tenant_id] = tenant
        return tenant

    def find(self, key: str) -> Tenant | None:
        """By tenant_id, or by the uuid that tenant_url carries."""
        found = self.tenants.get(key)
        if found is None:
            found = next((t for t in self.tenants.values() if t.uuid == key), None)
        return found
