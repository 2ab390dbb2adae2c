"""The ``cohortbridge`` command line, run as a user runs it: a real process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from cohortbridge.cli.demo import expected_members, streamed_plays
from cohortbridge.cli.main import app
from cohortbridge.engage.segments.models import segments

CLI = [sys.executable, "-m", "cohortbridge.cli"]


def run(args: list[str], env: dict[str, str] | None = None, check: bool = True) -> Any:
    result = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
        timeout=120, check=False,
    )  # fmt: skip
    if check:
        assert result.returncode == 0, result.stderr
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_bootstrap_reuses_workspace_and_keys_work(cli_env: dict[str, str]) -> None:
    first = json.loads(
        run(["engage", "bootstrap", "--workspace", "Acme", "--json"], cli_env).stdout
    )
    assert set(first) == {"workspace_id", "app_id", "rest_api_key", "rest_endpoint"}
    assert first["rest_endpoint"] == "http://127.0.0.1:8400"
    again = json.loads(
        run(["engage", "bootstrap", "--workspace", "Acme", "--json"], cli_env).stdout
    )
    assert again["workspace_id"] == first["workspace_id"]
    assert again["rest_api_key"] != first["rest_api_key"]

    created = run(
        ["engage", "api-keys", "create", "--workspace", "Acme", "--permission", "users.track",
         "--permission", "users.export.ids", "--json"], cli_env,
    )  # fmt: skip
    assert set(json.loads(created.stdout)) == {"rest_api_key"}
    listed = json.loads(
        run(["engage", "api-keys", "list", "--workspace", "Acme", "--json"], cli_env).stdout
    )
    assert len(listed) == 3
    assert sorted(listed[2]["permissions"]) == ["users.export.ids", "users.track"]

    points = json.loads(
        run(["engage", "datapoints", "--workspace", "Acme", "--json"], cli_env).stdout
    )
    assert points["total"] == 0


def test_errors_say_what_to_do(cli_env: dict[str, str]) -> None:
    missing = run(["engage", "api-keys", "list", "--workspace", "Nope"], cli_env, check=False)
    assert missing.returncode == 1
    assert "cohortbridge engage bootstrap" in missing.stderr
    run(["engage", "bootstrap", "--workspace", "W"], cli_env)
    bad = run(
        ["engage", "api-keys", "create", "--workspace", "W", "--permission", "users.fly"],
        cli_env, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "users.fly" in bad.stderr


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for args in (
        [], ["up"], ["serve"], ["worker"], ["db"], ["db", "upgrade"], ["db", "current"], ["engage"],
        ["engage", "bootstrap"], ["engage", "api-keys"], ["engage", "api-keys", "create"],
        ["engage", "api-keys", "list"], ["engage", "datapoints"], ["engage", "workspaces"],
        ["engage", "partners", "create"], ["engage", "import-keys", "create"],
        ["engage", "import-keys", "list"], ["engage", "import-keys", "invalidate"],
        ["engage", "cohorts", "list"], ["engage", "segments"], ["engage", "segments", "create"],
        ["engage", "segments", "size"], ["engage", "segments", "list"],
        ["engage", "segments", "export"], ["analytics"], ["analytics", "project", "create"],
        ["analytics", "project", "list"], ["analytics", "event-types", "set-active"],
        ["analytics", "cohorts"], ["analytics", "cohorts", "create"],
        ["analytics", "cohorts", "compute"], ["analytics", "cohorts", "list"],
        ["analytics", "cohorts", "download"], ["analytics", "cohorts", "update"],
        ["analytics", "computations"], ["analytics", "computations", "create"],
        ["analytics", "computations", "compute"], ["analytics", "computations", "list"],
        ["analytics", "destinations"], ["analytics", "destinations", "create"],
        ["analytics", "destinations", "update"], ["analytics", "syncs"],
        ["analytics", "syncs", "create"], ["analytics", "syncs", "run"],
        ["analytics", "syncs", "history"],
    ):  # fmt: skip
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output


def test_db_upgrade_creates_sqlite_files(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    result = run(["--data-dir", str(data), "db", "upgrade"])
    assert "engage: at" in result.stdout
    assert (data / "engage.db").exists()
    assert (data / "analytics.db").exists()


def test_up_serves_both_sides(tmp_path: Path) -> None:
    ports = {"COHORTBRIDGE_ENGAGE_PORT": str(free_port()),
             "COHORTBRIDGE_ANALYTICS_PORT": str(free_port())}  # fmt: skip
    env = {**os.environ, **ports, "COHORTBRIDGE_DATA_DIR": str(tmp_path / "var")}
    process = subprocess.Popen(
        [*CLI, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        for side, port in (("engage", ports["COHORTBRIDGE_ENGAGE_PORT"]),
                           ("analytics", ports["COHORTBRIDGE_ANALYTICS_PORT"])):  # fmt: skip
            body = _wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
            assert body["side"] == side
        _demo_segment_fills(tmp_path / "var", expected_members())
        _demo_plays_arrive(tmp_path / "var", streamed_plays())
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert (tmp_path / "var" / "engage.db").exists()
    output = process.stdout.read().decode() if process.stdout else ""
    assert "REST API key (shown once)" in output
    assert "analytics project 'Default Project'" in output
    listed = run(["--data-dir", str(tmp_path / "var"), "engage", "workspaces", "--json"])
    assert [w["name"] for w in json.loads(listed.stdout)] == ["Default Workspace"]
    projects = run(["--data-dir", str(tmp_path / "var"), "analytics", "project", "list", "--json"])
    assert [p["name"] for p in json.loads(projects.stdout)] == ["Default Project"]


def _demo_plays_arrive(data: Path, expected: int) -> None:
    """The demo stream forwards the plays of identified users to engage, counted under its
    key in the ledger."""
    deadline = time.monotonic() + 60
    engine = create_engine(f"sqlite:///{data / 'engage.db'}")
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                plays = conn.exec_driver_sql(
                    "SELECT COUNT(*) FROM custom_events WHERE name = 'Song Played'"
                ).scalar_one()
                counted = conn.exec_driver_sql(
                    "SELECT COALESCE(SUM(count), 0) FROM datapoints "
                    "WHERE source = 'users_track:amplitude-stream'").scalar_one()  # fmt: skip
            if plays == expected and counted >= expected:
                return
            time.sleep(1)
    finally:
        engine.dispose()
    raise AssertionError(f"engage holds {plays} demo plays, not {expected}")


def _demo_segment_fills(data: Path, expected: int) -> None:
    """The demo's segment holds the demo cohort's users soon after the first start."""
    deadline = time.monotonic() + 120
    engine = create_engine(f"sqlite:///{data / 'engage.db'}")
    with engine.connect() as conn:
        segment_id = conn.execute(select(segments.c.id)).scalar_one()
    engine.dispose()
    while time.monotonic() < deadline:
        size = json.loads(run(["--data-dir", str(data), "engage", "segments", "size", segment_id,
                               "--json"]).stdout)["size"]  # fmt: skip
        if size == expected:
            return
        time.sleep(2)
    raise AssertionError(f"the demo segment holds {size}, not {expected}")


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            return httpx.get(url, timeout=2).json()
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def test_partner_keys_import_keys_and_cohorts(cli_env: dict[str, str]) -> None:
    run(["engage", "bootstrap", "--workspace", "P", "--json"], cli_env)
    partner = json.loads(
        run(["engage", "partners", "create", "--partner", "amplitude", "--json"], cli_env).stdout
    )
    assert partner["partner"] == "amplitude"
    created = json.loads(run(
        ["engage", "import-keys", "create", "--workspace", "P", "--partner", "amplitude", "--json"], cli_env
    ).stdout)  # fmt: skip
    assert set(created) == {"id", "data_import_key", "rest_endpoint"}
    second = json.loads(run(
        ["engage", "import-keys", "create", "--workspace", "P", "--partner", "amplitude", "--json"], cli_env
    ).stdout)  # fmt: skip
    run(["engage", "import-keys", "invalidate", "--workspace", "P", "--partner", "amplitude",
         "--id", created["id"]], cli_env)  # fmt: skip
    listed = json.loads(run(
        ["engage", "import-keys", "list", "--workspace", "P", "--partner", "amplitude", "--json"], cli_env
    ).stdout)  # fmt: skip
    assert [(k["id"], k["status"]) for k in listed] == [
        (created["id"], "invalidated"),
        (second["id"], "active"),
    ]
    assert all(created["data_import_key"] not in k["key"] for k in listed)
    assert (
        json.loads(run(["engage", "cohorts", "list", "--workspace", "P", "--json"], cli_env).stdout)
        == []
    )
    unknown = run(
        ["engage", "import-keys", "list", "--workspace", "P", "--partner", "nope"],
        cli_env,
        check=False,
    )
    assert unknown.returncode == 1
    assert "engage partners create" in unknown.stderr


def test_serve_with_worker_processes(cli_env: dict[str, str]) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "serve", "engage", "--port", str(port), "--workers", "2"],
        env={**os.environ, **cli_env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert _wait_healthy(f"http://127.0.0.1:{port}/healthz", process)["side"] == "engage"
    finally:
        process.terminate()
        process.wait(timeout=30)
