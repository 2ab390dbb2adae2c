import httpx


async def test_healthz(engage: httpx.AsyncClient) -> None:
    response = await engage.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
