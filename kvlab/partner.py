"""The partner's orders API, played locally for lesson 07: it accepts one API key, the one the set-up issued.

The key's SHA-256 is all that is kept (staged in the emulator), as a real API keeps a hash of the keys it issued:
so whoever holds the key can call, and nothing here can give it back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

STAGE = "partner.key-sha256"
ORDERS = ({"id": 101, "customer": "Tailspin Toys", "amount": 310.00},
          {"id": 102, "customer": "Wide World Importers", "amount": 75.25},
          {"id": 103, "customer": "Adventure Works", "amount": 1290.40})


class PartnerError(RuntimeError):
    """The partner API refused the call (one line, as its 401 says it)."""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(lab) -> str:
    """A new API key (looking fake, as every planted secret here does); the old one stops working."""
    key = "pk_fake_" + secrets.token_hex(20)
    lab.stage(STAGE, _digest(key))
    return key


def fetch_orders(api_key: str, lab=None) -> list[dict]:
    """Today's orders from the partner, for a valid API key; PartnerError (401) otherwise."""
    from .admin import Admin

    expected = (lab or Admin()).stage(STAGE)
    if not expected or not isinstance(api_key, str) or not hmac.compare_digest(_digest(api_key), expected):
        raise PartnerError("401 Unauthorized: the partner API does not accept this API key")
    return [dict(order) for order in ORDERS]
