"""``cohortbridge engage segments``: create, size, list and export from the command line."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import httpx

from tests.cli.test_commands import run
from tests.engage.users.helpers import track

BLUE = {"custom_attribute": {"custom_attribute_name": "eye", "comparison": "equals",
                             "value": "blue"}}  # fmt: skip


async def test_create_size_list_and_export(
    engage: httpx.AsyncClient, auth: dict[str, str], workspace: dict[str, Any],
    cli_env: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    await track(engage, auth, attributes=[
        {"external_id": f"u{i}", "eye": "blue" if i % 2 else "brown"} for i in range(10)
    ])  # fmt: skip
    definition = tmp_path / "blue.json"
    definition.write_text(json.dumps(BLUE))
    created = run(["engage", "segments", "create", "--workspace", "Test Workspace",
                   "--name", "Blue", "--filter", f"@{definition}", "--json"], cli_env)  # fmt: skip
    segment_id = json.loads(created.stdout)["segment_id"]
    size = run(["engage", "segments", "size", segment_id, "--json"], cli_env)
    assert json.loads(size.stdout) == {"size": 5}
    listed = json.loads(run(["engage", "segments", "list", "--workspace", "Test Workspace",
                             "--json"], cli_env).stdout)  # fmt: skip
    assert [(s["id"], s["description"]) for s in listed] == [(segment_id, 'eye equals "blue"')]

    out = tmp_path / "blue.ndjson"
    exported = run(["engage", "segments", "export", segment_id, "--out", str(out),
                    "--field", "external_id"], cli_env)  # fmt: skip
    assert "wrote 5 users" in exported.stdout
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(u["external_id"] for u in lines) == ["u1", "u3", "u5", "u7", "u9"]
    archive = tmp_path / "blue.zip"
    run(["engage", "segments", "export", segment_id, "--out", str(archive)], cli_env)
    with zipfile.ZipFile(archive) as zipped:
        users = [json.loads(line) for name in zipped.namelist()
                 for line in zipped.read(name).splitlines()]  # fmt: skip
    assert sorted(u["custom_attributes"]["eye"] for u in users) == ["blue"] * 5


def test_errors_name_the_problem_and_the_next_step(
    workspace: dict[str, Any], cli_env: dict[str, str]
) -> None:
    bad = run(["engage", "segments", "create", "--workspace", "Test Workspace", "--name", "x",
               "--filter", '{"OR": []}'], cli_env, check=False)  # fmt: skip
    assert bad.returncode == 2
    assert "Invalid filter at filter.OR: must be a non-empty array of filters" in bad.stderr
    not_json = run(["engage", "segments", "create", "--workspace", "Test Workspace", "--name",
                    "x", "--filter", "{nope"], cli_env, check=False)  # fmt: skip
    assert not_json.returncode == 2
    assert "--filter is not JSON" in not_json.stderr
    missing = run(["engage", "segments", "size", "nope"], cli_env, check=False)
    assert missing.returncode == 1
    assert "Segment not found (see `segments list`)" in missing.stderr
    helped = run(["engage", "segments", "export", "--help"], cli_env)
    assert "--out" in helped.stdout
