"""Segments made only of cohorts are SQL set operations: their sizes equal the same algebra
on Python sets, with members in several cohorts, on both databases."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from cohortbridge.db.engine import Database
from tests.engage.segments.test_seed_flow import _partner_keys, _size

COHORTS = ("k1", "k2", "k3", "k4")


def inc(cohort: str) -> dict[str, Any]:
    return {"amplitude_cohorts": {"comparison": "includes_value", "value": cohort}}


def exc(cohort: str) -> dict[str, Any]:
    return {"amplitude_cohorts": {"comparison": "excludes_value", "value": cohort}}


@pytest.fixture
async def members(
    engage: httpx.AsyncClient, auth: dict[str, str], engage_db: Database,
    workspace: dict[str, Any],
) -> dict[str, set[str]]:  # fmt: skip
    users = [f"user-{i:03d}" for i in range(120)]
    for start in range(0, len(users), 75):
        response = await engage.post("/users/track", headers=auth, json={
            "attributes": [{"external_id": u} for u in users[start : start + 75]]})  # fmt: skip
        assert response.status_code == 201, response.text
    keys = await _partner_keys(engage_db, workspace["workspace_id"])
    chosen = random.Random(7)
    held = {c: {u for u in users if chosen.random() < 0.4} for c in COHORTS}
    for cohort, ids in held.items():
        await engage.post("/partners/amplitude/cohorts", json={
            **keys, "cohort_id": cohort, "name": cohort, "created_at": "2026-11-01T00:00:00Z"})  # fmt: skip
        response = await engage.post("/partners/amplitude/cohorts/users", json={
            **keys, "cohort_id": cohort,
            "cohort_changes": [{"user_ids": sorted(ids)}]})  # fmt: skip
        assert response.status_code == 201, response.text
    return held


async def test_cohort_algebra_sizes(
    engage: httpx.AsyncClient, auth: dict[str, str], members: dict[str, set[str]]
) -> None:
    k1, k2, k3, k4 = (members[c] for c in COHORTS)
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"OR": [inc("k1"), inc("k2"), inc("k3")]}, k1 | k2 | k3),
        ({"AND": [{"OR": [inc("k1"), inc("k2"), inc("k3")]}, exc("k4")]}, (k1 | k2 | k3) - k4),
        ({"AND": [inc("k1"), inc("k2")]}, k1 & k2),
        (
            {"AND": [{"OR": [inc("k1"), inc("k2")]}, {"OR": [inc("k3"), inc("k4")]}]},
            (k1 | k2) & (k3 | k4),
        ),
        ({"AND": [inc("k1"), exc("k2"), exc("k3")]}, k1 - k2 - k3),
        ({"OR": [inc("k1")]}, k1),
        (
            {"OR": [{"OR": [inc("k1"), inc("k2")]}, {"AND": [inc("k3"), inc("k4")]}]},
            (k1 | k2) | (k3 & k4),
        ),
        ({"AND": [{"OR": [inc("k1"), inc("k2")]}]}, k1 | k2),
    ]
    for definition, expected in cases:
        created = await engage.post("/segments/create", headers=auth,
                                    json={"name": "algebra", "filter": definition})  # fmt: skip
        assert created.status_code == 201, created.text
        assert await _size(engage, auth, created.json()["segment_id"]) == len(expected), definition
