"""Parallel /users/track requests over real HTTP: none lost, no duplicates, no 5xx."""

import asyncio
from typing import Any

import httpx

from tests.conftest import LiveServer

CLIENTS = 4
ROUNDS = 10


async def test_parallel_creates_and_increments(
    live_engage: LiveServer, auth: dict[str, str]
) -> None:
    async def client(n: int, http: httpx.AsyncClient) -> list[int]:
        statuses = []
        for r in range(ROUNDS):
            # Every client creates the same new profiles and increments one shared counter.
            body: dict[str, Any] = {
                "attributes": [{"external_id": f"race-{r}", "seen": {"inc": 1}},
                               {"external_id": "shared", "hits": {"inc": 1},
                                "tags": {"add": [f"c{n}"]}}],
                "events": [{"external_id": f"race-{r}", "name": "tick",
                            "time": "2026-11-01T00:00:00Z"}],
            }  # fmt: skip
            response = await http.post("/users/track", json=body, headers=auth)
            statuses.append(response.status_code)
        return statuses

    async with httpx.AsyncClient(base_url=live_engage.url, timeout=60) as http:
        results = await asyncio.gather(*(client(n, http) for n in range(CLIENTS)))
        assert {s for statuses in results for s in statuses} == {201}
        ids = [f"race-{r}" for r in range(ROUNDS)] + ["shared"]
        response = await http.post("/users/export/ids", json={"external_ids": ids}, headers=auth)
    users = {u["external_id"]: u for u in response.json()["users"]}
    assert len(users) == ROUNDS + 1
    for r in range(ROUNDS):
        assert users[f"race-{r}"]["custom_attributes"]["seen"] == CLIENTS
        assert users[f"race-{r}"]["custom_events"][0]["count"] == CLIENTS
    assert users["shared"]["custom_attributes"]["hits"] == CLIENTS * ROUNDS
    assert sorted(users["shared"]["custom_attributes"]["tags"]) == [f"c{n}" for n in range(CLIENTS)]
