"""Generating and hashing secrets (API keys and the like).

Keys are shown to their owner once; we keep only a SHA-256 digest. Keys are random with 122 bits
of entropy, so a fast unsalted hash is enough: nothing can be brute-forced from the digest.
"""

from __future__ import annotations

import hashlib
import uuid


def new_uuid_key() -> str:
    """A key shaped like Braze's REST API keys (a UUID)."""
    return str(uuid.uuid4())


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def mask(secret: str, visible: int = 4) -> str:
    """What a listing shows of a secret: its last few characters."""
    return "*" * max(len(secret) - visible, 4) + secret[-visible:]
