"""Amplitude ID assignment (spec amplitude §6.1, rules 1–5): pure, no I/O.

The resolver starts from what the database knows about a batch's ids and walks its events in
order. New users get provisional negative ids until they are inserted; an anonymous user merged
into an identified one is recorded, and ``final`` follows merges, so every event ends on the
surviving user. User ids are never merged with each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Known:
    """The ids of a batch as the database has them."""

    by_user: dict[str, int] = field(default_factory=dict)  # user_id → amplitude_id
    user_of: dict[int, str | None] = field(default_factory=dict)  # amplitude_id → user_id
    device_owner: dict[str, int] = field(default_factory=dict)  # device_id → amplitude_id


@dataclass
class Resolver:
    known: Known
    # Provisional ids of users to create, with their user_id (None: anonymous), in order.
    created: dict[int, str | None] = field(default_factory=dict)
    # Anonymous users of the database that became identified here (rule 2).
    identified: dict[int, str] = field(default_factory=dict)
    # Devices whose owner changed or is new.
    devices: dict[str, int] = field(default_factory=dict)
    merged: dict[int, int] = field(default_factory=dict)  # merged id → surviving id

    def _new(self, user_id: str | None) -> int:
        provisional = -(len(self.created) + 1)
        self.created[provisional] = user_id
        self.known.user_of[provisional] = user_id
        if user_id is not None:
            self.known.by_user[user_id] = provisional
        return provisional

    def _own(self, device_id: str, amplitude_id: int) -> None:
        if self.known.device_owner.get(device_id) != amplitude_id:
            self.known.device_owner[device_id] = amplitude_id
            self.devices[device_id] = amplitude_id

    def _merge(self, anonymous: int, into: int) -> None:
        """Rule 5: an anonymous user's history joins the user who logged in on its device."""
        self.merged[anonymous] = into
        self.known.user_of.pop(anonymous, None)
        for device, owner in list(self.known.device_owner.items()):
            if owner == anonymous:
                self._own(device, into)

    def resolve(self, user_id: str | None, device_id: str) -> int:
        owner = self.known.device_owner.get(device_id)
        if owner is not None:
            owner = self.final(owner)
        if user_id is None:
            if owner is None:  # rule 1: a new device
                owner = self._new(None)
            self._own(device_id, owner)  # rule 4: the device's last known user
            return owner
        known = self.known.by_user.get(user_id)
        anonymous_owner = owner is not None and self.known.user_of.get(owner) is None
        if known is None and anonymous_owner:  # rule 2: the device's history becomes U's
            assert owner is not None
            self._identify(owner, user_id)
            known = owner
        elif known is None:  # rule 4: another user's device, or a new one
            known = self._new(user_id)
        elif anonymous_owner and owner != known:  # rule 5
            assert owner is not None
            self._merge(owner, known)
        self._own(device_id, known)
        return known

    def _identify(self, amplitude_id: int, user_id: str) -> None:
        self.known.user_of[amplitude_id] = user_id
        self.known.by_user[user_id] = amplitude_id
        if amplitude_id in self.created:
            self.created[amplitude_id] = user_id
        else:
            self.identified[amplitude_id] = user_id

    def final(self, amplitude_id: int) -> int:
        while amplitude_id in self.merged:
            amplitude_id = self.merged[amplitude_id]
        return amplitude_id
