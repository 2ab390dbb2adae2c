"""Identifier generation."""

from __future__ import annotations

import itertools
import os
import secrets
import time

# next() on itertools.count is atomic under the GIL, so no lock is needed.
_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
_machine = os.urandom(5)


def object_id() -> str:
    """A 24-hex BSON-ObjectId-like id, the shape of Braze's ``braze_id``.

    4 bytes of seconds, 5 random bytes fixed per process, 3 bytes of a counter: unique across
    processes with overwhelming probability and roughly time-ordered, like Mongo's ObjectId.
    """
    count = next(_counter) & 0xFFFFFF
    return (int(time.time()).to_bytes(4, "big") + _machine + count.to_bytes(3, "big")).hex()


_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def short_id(length: int = 10) -> str:
    """A random lower-case id for things people type (syncs, streams, destinations)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
