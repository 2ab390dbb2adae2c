"""Segment definitions and their audience (spec braze §5). Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.engage.cohorts import service as cohorts
from cohortbridge.engage.errors import BrazeError
from cohortbridge.engage.partners import repository as partners
from cohortbridge.engage.segments.logic import tree as t
from cohortbridge.engage.segments.logic.describe import Names, describe
from cohortbridge.engage.segments.logic.parse import InvalidFilter, leaves, parse
from cohortbridge.engage.segments.repository import audience
from cohortbridge.engage.segments.repository import definitions as repo
from cohortbridge.engage.users.logic.times import format_time
from cohortbridge.kit.clock import utcnow

MAX_NAME = 255
MAX_TAGS = 100
MAX_TEXT = 10_000
SEGMENT_NOT_FOUND = "Segment not found"


def _bad(message: str) -> BrazeError:
    return BrazeError(400, message)


def _invalid(error: InvalidFilter) -> BrazeError:
    return BrazeError(
        400,
        f"Invalid filter at {error.path}: {error.reason}",
        extra={"errors": [{"path": error.path, "reason": error.reason}]},
    )


@dataclass(frozen=True)
class Draft:
    """A validated create or update body; ``None`` fields stay as they are on update."""

    segment_id: str | None
    name: str | None
    definition: Any
    tree: t.Node | None
    text_description: str | None
    tags: list[str] | None
    tracking: bool | None


def _name(payload: dict[str, Any], required: bool) -> str | None:
    name = payload.get("name")
    if name is None and not required:
        return None
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise _bad(f"'name' must be a non-empty string of at most {MAX_NAME} characters")
    return name


def _tags(payload: dict[str, Any]) -> list[str] | None:
    tags = payload.get("tags")
    if tags is None:
        return None
    if (
        not isinstance(tags, list)
        or len(tags) > MAX_TAGS
        or not all(isinstance(tag, str) and 0 < len(tag) <= MAX_NAME for tag in tags)
    ):
        raise _bad(f"'tags' must be an array of at most {MAX_TAGS} non-empty strings")
    return list(dict.fromkeys(tags))


def _text(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
        raise _bad(f"'{key}' must be a string of at most {MAX_TEXT} characters")
    return value


def _flag(payload: dict[str, Any], key: str) -> bool | None:
    value = payload.get(key)
    if value is not None and not isinstance(value, bool):
        raise _bad(f"'{key}' must be a boolean")
    return value


def _tree(payload: dict[str, Any], required: bool) -> t.Node | None:
    if "filter" not in payload and not required:
        return None
    if payload.get("filter") is None:
        raise _bad("'filter' is required: a segment definition in Braze's filter vocabulary")
    try:
        return parse(payload["filter"])
    except InvalidFilter as error:
        raise _invalid(error) from error


def prepare_create(payload: dict[str, Any]) -> Draft:
    return Draft(
        segment_id=None,
        name=_name(payload, required=True),
        definition=payload.get("filter"),
        tree=_tree(payload, required=True),
        text_description=_text(payload, "description"),
        tags=_tags(payload),
        tracking=_flag(payload, "analytics_tracking_enabled"),
    )


def prepare_update(payload: dict[str, Any]) -> Draft:
    segment_id = payload.get("segment_id")
    if not isinstance(segment_id, str) or not segment_id:
        raise _bad("'segment_id' is required")
    draft = Draft(
        segment_id=segment_id,
        name=_name(payload, required=False),
        definition=payload.get("filter"),
        tree=_tree(payload, required=False),
        text_description=_text(payload, "description"),
        tags=_tags(payload),
        tracking=_flag(payload, "analytics_tracking_enabled"),
    )
    if all(v is None for v in (draft.name, draft.tree, draft.text_description, draft.tags,
                               draft.tracking)):  # fmt: skip
        raise _bad("nothing to update: give name, filter, description, tags or "
                   "analytics_tracking_enabled")  # fmt: skip
    return draft


def _where(definition: Any, matches: Callable[[str, dict[str, Any]], bool]) -> str:
    """The path of the first filter of the definition that ``matches``."""
    for path, key, body in leaves(definition):
        if matches(key, body):
            return path
    return "filter"


def _names_partner(partner: str) -> Callable[[str, dict[str, Any]], bool]:
    return lambda key, body: _partner_of(key, body) == partner


def _partner_of(key: str, body: dict[str, Any]) -> str | None:
    if key == "partner_cohorts":
        return body.get("partner")
    return key.removesuffix("_cohorts") if key.endswith("_cohorts") else None


async def _check_names(
    conn: AsyncConnection, workspace_id: str, draft: Draft, segment_id: str | None
) -> set[str]:
    """The segments and partners a definition names must exist; Segment Membership does not
    nest (Braze's rule: a segment that uses it cannot itself be named), so no cycle can form."""
    assert draft.tree is not None
    named = t.segments_named(draft.tree)

    def refused(value: str, reason: str) -> BrazeError:
        def names_it(key: str, body: dict[str, Any]) -> bool:
            return key == "segment_membership" and body.get("value") == value

        path = f"{_where(draft.definition, names_it)}.value"
        return _invalid(InvalidFilter(path, reason))

    if segment_id is not None and segment_id in named:
        raise refused(segment_id, "a segment cannot name itself")
    found = {row["id"] for row in await repo.get_many(conn, workspace_id, sorted(named))}
    for missing in sorted(named - found):
        raise refused(missing, f"unknown segment '{missing}'")
    for nested in sorted(await repo.references_of(conn, sorted(named))):
        raise refused(nested, f"segment '{nested}' uses segment_membership itself, so it "
                              "cannot be named by another segment")  # fmt: skip
    if named and segment_id is not None and await repo.referenced_by(conn, segment_id):
        raise refused(sorted(named)[0], "other segments name this one in segment_membership, "
                                        "so it cannot use segment_membership itself")  # fmt: skip
    for partner, _cohort in sorted(t.cohorts_named(draft.tree)):
        if await partners.get_partner(conn, partner) is None:
            path = _where(draft.definition, _names_partner(partner))
            reason = f"unknown partner '{partner}' (see `engage partners`)"
            raise _invalid(InvalidFilter(path, reason))
    return named


async def create(conn: AsyncConnection, workspace_id: str, draft: Draft) -> dict[str, Any]:
    assert draft.tree is not None and draft.name is not None
    named = await _check_names(conn, workspace_id, draft, None)
    now = utcnow()
    segment_id = str(uuid.uuid4())
    await repo.insert_segment(conn, {
        "id": segment_id, "workspace_id": workspace_id, "name": draft.name,
        "definition": draft.definition, "text_description": draft.text_description,
        "tags": draft.tags or [], "analytics_tracking_enabled": bool(draft.tracking),
        "created_at": now, "updated_at": now,
    })  # fmt: skip
    await repo.set_references(conn, segment_id, named)
    return {"message": "success", "segment_id": segment_id}


async def found(conn: AsyncConnection, workspace_id: str | None, segment_id: Any) -> RowMapping:
    if not isinstance(segment_id, str) or not segment_id:
        raise _bad("'segment_id' is required")
    row = await repo.get(conn, segment_id, workspace_id)
    if row is None:
        raise BrazeError(404, SEGMENT_NOT_FOUND)
    return row


async def update(conn: AsyncConnection, workspace_id: str, draft: Draft) -> dict[str, Any]:
    row = await found(conn, workspace_id, draft.segment_id)
    if row["archived_at"] is not None:
        raise _bad("Segment is archived")
    values: dict[str, Any] = {"updated_at": utcnow()}
    if draft.tree is not None:
        named = await _check_names(conn, workspace_id, draft, row["id"])
        await repo.set_references(conn, row["id"], named)
        values["definition"] = draft.definition
    changes = {
        "name": draft.name, "text_description": draft.text_description, "tags": draft.tags,
        "analytics_tracking_enabled": draft.tracking,
    }  # fmt: skip
    values.update({key: value for key, value in changes.items() if value is not None})
    await repo.update_segment(conn, row["id"], values)
    return {"message": "success", "segment_id": row["id"]}


async def archive(conn: AsyncConnection, workspace_id: str, payload: Any) -> dict[str, Any]:
    row = await found(conn, workspace_id, payload.get("segment_id"))
    await repo.archive(conn, row["id"], utcnow())
    return {"message": "success", "segment_id": row["id"]}


async def audience_of(
    conn: AsyncConnection, row: RowMapping, now: datetime | None = None
) -> tuple[t.Node, audience.Scope]:
    """The tree of a stored segment and what compiling it needs (the segments it names)."""
    tree = parse(row["definition"])
    named = await repo.get_many(conn, row["workspace_id"], sorted(t.segments_named(tree)))
    scope = audience.Scope(
        dialect=conn.dialect.name,
        workspace_id=row["workspace_id"],
        now=now or utcnow(),
        segments={other["id"]: parse(other["definition"]) for other in named},
    )
    return tree, scope


async def size_of(conn: AsyncConnection, row: RowMapping) -> int:
    tree, scope = await audience_of(conn, row)
    return await audience.size(conn, tree, scope)


async def size(conn: AsyncConnection, workspace_id: str, payload: Any) -> dict[str, Any]:
    row = await found(conn, workspace_id, payload.get("segment_id"))
    return {"message": "success", "segment_id": row["id"], "size": await size_of(conn, row)}


async def describe_row(conn: AsyncConnection, row: RowMapping) -> str:
    tree = parse(row["definition"])
    cohort_keys = t.cohorts_named(tree)
    named = await repo.get_many(conn, row["workspace_id"], sorted(t.segments_named(tree)))
    for other in named:
        cohort_keys |= t.cohorts_named(parse(other["definition"]))
    titles = await cohorts.titles(conn, row["workspace_id"], cohort_keys)
    partner_names = {}
    for partner, _cohort in cohort_keys:
        found_partner = await partners.get_partner(conn, partner)
        if found_partner is not None:
            partner_names[partner] = found_partner["display_name"]
    names = Names(titles, {other["id"]: other["name"] for other in named}, partner_names)
    return describe(tree, names)


def _segment_body(row: RowMapping, description: str) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "filter": row["definition"],
        "description": description, "text_description": row["text_description"],
        "tags": row["tags"] or [], "analytics_tracking_enabled": row["analytics_tracking_enabled"],
        "archived": row["archived_at"] is not None,
        "created_at": format_time(row["created_at"]), "updated_at": format_time(row["updated_at"]),
    }  # fmt: skip


async def get(conn: AsyncConnection, workspace_id: str, payload: Any) -> dict[str, Any]:
    row = await found(conn, workspace_id, payload.get("segment_id"))
    return {"message": "success", "segment": _segment_body(row, await describe_row(conn, row))}


async def details(conn: AsyncConnection, workspace_id: str, payload: Any) -> dict[str, Any]:
    """Braze's ``GET /segments/details`` (spec braze §5.1)."""
    row = await found(conn, workspace_id, payload.get("segment_id"))
    return {
        "message": "success",
        "created_at": format_time(row["created_at"]),
        "updated_at": format_time(row["updated_at"]),
        "name": row["name"],
        "description": await describe_row(conn, row),
        "text_description": row["text_description"],
        "tags": row["tags"] or [],
        "teams": [],
    }


def _page_number(payload: dict[str, Any]) -> int:
    raw = payload.get("page", 0)
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    raise _bad("'page' must be a non-negative integer")


async def list_page(conn: AsyncConnection, workspace_id: str, payload: Any) -> dict[str, Any]:
    """Braze's ``GET /segments/list``: pages of 100, oldest first by default, no archived."""
    direction = payload.get("sort_direction", "asc")
    if direction not in ("asc", "desc"):
        raise _bad("'sort_direction' must be asc or desc")
    rows = await repo.page(conn, workspace_id, _page_number(payload), direction == "desc")
    return {
        "message": "success",
        "segments": [
            {
                "id": row["id"],
                "name": row["name"],
                "analytics_tracking_enabled": row["analytics_tracking_enabled"],
                "tags": row["tags"] or [],
            }
            for row in rows
        ],
    }
