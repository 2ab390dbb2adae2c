"""Aliases, identify, merge and delete (spec braze §3.6–§3.10, §4). Never commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cohortbridge.db.unit import call
from cohortbridge.engage.cohorts import repository as cohorts
from cohortbridge.engage.errors import BrazeError, RetryTransaction
from cohortbridge.engage.users import repository as repo
from cohortbridge.engage.users.logic.attributes import ProfileState
from cohortbridge.engage.users.logic.combine import check_prioritization, choose, fill_missing
from cohortbridge.engage.users.logic.identifiers import (
    Alias,
    Ident,
    InvalidObject,
    check_external_id,
    parse_alias,
)
from cohortbridge.engage.users.service.resolve import existing_ids
from cohortbridge.engage.users.service.track import new_profile_row
from cohortbridge.kit.clock import utcnow
from cohortbridge.kit.ids import object_id

MAX_ITEMS = 50


def _items(payload: dict[str, Any], key: str, *, required: bool = True) -> list[Any]:
    value = payload.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BrazeError(400, f"'{key}' must be an array of objects")
    if len(value) > MAX_ITEMS:
        raise BrazeError(400, f"a single request may not contain more than {MAX_ITEMS} {key}")
    return value


# --- merging two profiles ---------------------------------------------------------------


async def merge_profiles(
    conn: AsyncConnection, workspace_id: str, source_id: int, target_id: int
) -> None:
    """Fold the source profile into the target and delete the source (spec braze §4).

    Missing fields are filled from the source, histories and revenue are summed, aliases move
    unless the target has that label, devices, raw events and cohort memberships move.
    """
    states = await call(conn, repo.load_states, [source_id, target_id], lock=True)
    source, target = _state(states[source_id]), _state(states[target_id])
    merged = fill_missing(target, source)
    await repo.move_aliases(conn, source_id, target_id)
    await repo.move_rows(conn, source_id, target_id)
    await repo.fold_histories(conn, source_id, target_id)
    await cohorts.move_memberships(conn, source_id, target_id)
    await call(conn, repo.add_revenue, {target_id: await repo.revenue_of(conn, source_id)})
    await repo.delete_profiles(conn, [source_id])
    await call(conn, repo.update_states, [_state_row(target_id, merged)])


def _state(row: Any) -> ProfileState:
    return ProfileState(
        columns={name: row[name] for name in repo.STATE_COLUMNS},
        document=dict(row["standard"] or {}),
        custom=dict(row["custom_attributes"] or {}),
    )


def _state_row(profile_id: int, state: ProfileState) -> dict[str, Any]:
    return {
        "pid": profile_id,
        **{name: state.columns.get(name) for name in repo.STATE_COLUMNS},
        "standard": state.document,
        "custom_attributes": state.custom,
        "updated_at": utcnow(),
    }


# --- /users/identify ----------------------------------------------------------------------


async def identify(conn: AsyncConnection, workspace_id: str, payload: Any) -> dict[str, Any]:
    kinds = ("aliases_to_identify", "emails_to_identify", "phone_numbers_to_identify")
    if not any(payload.get(k) for k in kinds):
        raise BrazeError(400, "one of 'aliases_to_identify', 'emails_to_identify' or "
                              "'phone_numbers_to_identify' is required")  # fmt: skip
    lists = {k: _items(payload, k, required=False) for k in kinds}
    processed, errors = 0, []
    for key, items in lists.items():
        for index, item in enumerate(items):
            try:
                await _identify_one(conn, workspace_id, key, item)
                processed += 1
            except InvalidObject as error:
                errors.append({"type": str(error), "input_array": key, "index": index})
    body: dict[str, Any] = {"aliases_processed": processed, "message": "success"}
    if errors:
        body["errors"] = errors
    return body


async def _anonymous_source(
    conn: AsyncConnection, workspace_id: str, key: str, item: dict[str, Any]
) -> int | None:
    """The unidentified profile an identify item names (by alias, email or phone)."""
    if key == "aliases_to_identify":
        alias = parse_alias(item.get("user_alias"))
        return (await existing_ids(conn, workspace_id, [Ident("user_alias", alias)])).get(
            ("user_alias", alias)
        )
    field = "email" if key == "emails_to_identify" else "phone"
    value = item.get(field)
    if not isinstance(value, str) or not value:
        raise InvalidObject(f"'{field}' is required")
    try:
        priorities = check_prioritization(item.get("prioritization"))
    except ValueError as error:
        raise InvalidObject(str(error)) from error
    candidates = await call(conn, repo.candidates_by_contact, workspace_id, field, [value])
    anonymous = [dict(c) for c in candidates if c["external_id"] is None]
    return choose(anonymous, priorities)


async def _identify_one(
    conn: AsyncConnection, workspace_id: str, key: str, item: dict[str, Any]
) -> None:
    external_id = check_external_id(item.get("external_id"))
    source = await _anonymous_source(conn, workspace_id, key, item)
    if source is None:
        return  # nothing to identify: Braze does nothing either
    current = await repo.external_id_of(conn, source)
    if current is not None:
        return  # already identified (an alias of a known user): nothing to do
    found = await existing_ids(conn, workspace_id, [Ident("external_id", external_id)])
    target = found.get(("external_id", external_id))
    if target is None:
        # The anonymous profile becomes the identified one and keeps everything.
        if not await repo.set_external_id(conn, source, external_id, utcnow()):
            raise RetryTransaction("the external id was taken concurrently")
        return
    source_labels = await repo.labels_of(conn, source)
    if source_labels & await repo.labels_of(conn, target):
        return  # one alias per label: profiles with the same label are not combined
    await merge_profiles(conn, workspace_id, source, target)


# --- /users/merge -------------------------------------------------------------------------

MERGE_ARRAY = "'merge_updates' must be an array of objects"
MERGE_LIMIT = "a single request may not contain more than 50 merge updates"
MERGE_IDENTIFIER = (
    "identifiers must be objects with an 'external_id' property that is a string, 'user_alias' "
    "property that is an object, 'email' property that is a string, or 'phone' property that "
    "is a string"
)
MERGE_KEYS = "'merge_updates' must only have 'identifier_to_merge' and 'identifier_to_keep'"


def _merge_identifier(value: Any) -> tuple[Ident, list[str]]:
    if not isinstance(value, dict):
        raise BrazeError(400, MERGE_IDENTIFIER)
    try:
        if isinstance(value.get("external_id"), str):
            return Ident("external_id", check_external_id(value["external_id"])), []
        if isinstance(value.get("user_alias"), dict):
            return Ident("user_alias", parse_alias(value["user_alias"])), []
        for field in ("email", "phone"):
            if isinstance(value.get(field), str):
                return Ident(field, value[field]), check_prioritization(value.get("prioritization"))
    except (InvalidObject, ValueError) as error:
        raise BrazeError(400, MERGE_IDENTIFIER) from error
    raise BrazeError(400, MERGE_IDENTIFIER)


def _parse_merges(payload: Any) -> list[tuple[tuple[Ident, list[str]], tuple[Ident, list[str]]]]:
    updates = payload.get("merge_updates")
    if not isinstance(updates, list) or not all(isinstance(u, dict) for u in updates):
        raise BrazeError(400, MERGE_ARRAY)
    if len(updates) > MAX_ITEMS:
        raise BrazeError(400, MERGE_LIMIT)
    parsed = []
    for update in updates:
        if set(update) != {"identifier_to_merge", "identifier_to_keep"}:
            raise BrazeError(400, MERGE_KEYS)
        parsed.append(
            (_merge_identifier(update["identifier_to_merge"]),
             _merge_identifier(update["identifier_to_keep"]))
        )  # fmt: skip
    return parsed


async def _find(
    conn: AsyncConnection, workspace_id: str, ident: Ident, priorities: list[str]
) -> int | None:
    if ident.kind in ("email", "phone"):
        rows = await call(
            conn, repo.candidates_by_contact, workspace_id, ident.kind, [str(ident.value)]
        )
        return choose([dict(r) for r in rows], priorities or ["most_recently_updated"])
    return (await existing_ids(conn, workspace_id, [ident])).get(ident.key())


async def merge(conn: AsyncConnection, workspace_id: str, payload: Any) -> dict[str, Any]:
    """All merge updates are validated first, then applied in order."""
    for (merge_ident, merge_prio), (keep_ident, keep_prio) in _parse_merges(payload):
        source = await _find(conn, workspace_id, merge_ident, merge_prio)
        target = await _find(conn, workspace_id, keep_ident, keep_prio)
        if source is not None and target is not None and source != target:
            await merge_profiles(conn, workspace_id, source, target)
    return {"message": "success"}


# --- /users/delete ------------------------------------------------------------------------


def _delete_idents(payload: Any) -> list[tuple[Ident, list[str]]]:
    idents: list[tuple[Ident, list[str]]] = []
    try:
        for value in _strings(payload, "external_ids"):
            idents.append((Ident("external_id", value), []))
        for value in _strings(payload, "braze_ids"):
            idents.append((Ident("braze_id", value), []))
        for item in _items(payload, "user_aliases", required=False):
            idents.append((Ident("user_alias", parse_alias(item)), []))
        for key, field in (("email_addresses", "email"), ("phone_numbers", "phone")):
            for item in _items(payload, key, required=False):
                if not isinstance(item.get(field), str):
                    raise BrazeError(400, f"'{key}' must be objects with a string '{field}'")
                priorities = check_prioritization(item.get("prioritization"))
                idents.append((Ident(field, item[field]), priorities))  # type: ignore[arg-type]
    except (InvalidObject, ValueError) as error:
        raise BrazeError(400, str(error)) from error
    if not idents:
        raise BrazeError(400, "at least one identifier must be provided")
    if len(idents) > MAX_ITEMS:
        raise BrazeError(400, f"a single request may not contain more than {MAX_ITEMS} identifiers")
    return idents


def _strings(payload: Any, key: str) -> list[str]:
    value = payload.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BrazeError(400, f"'{key}' must be an array of strings")
    return value


async def delete(conn: AsyncConnection, workspace_id: str, payload: Any) -> dict[str, Any]:
    """Delete profiles: their memberships, aliases, devices and histories go with them."""
    ids: set[int] = set()
    for ident, priorities in _delete_idents(payload):
        found = await _find(conn, workspace_id, ident, priorities)
        if found is not None:
            ids.add(found)
    deleted = await repo.delete_profiles(conn, sorted(ids))
    return {"deleted": deleted, "message": "success"}


# --- /users/alias/new and /users/alias/update -------------------------------------------


async def new_aliases(conn: AsyncConnection, workspace_id: str, payload: Any) -> dict[str, Any]:
    items = _items(payload, "user_aliases")
    parsed: list[tuple[Alias, str | None]] = []
    try:
        for item in items:
            external = item.get("external_id")
            parsed.append(
                (parse_alias(item), None if external is None else check_external_id(external))
            )
    except InvalidObject as error:
        raise BrazeError(400, str(error)) from error
    processed = 0
    now = utcnow()
    for alias, external_id in parsed:
        if external_id is not None:
            found = await existing_ids(conn, workspace_id, [Ident("external_id", external_id)])
            pid = found.get(("external_id", external_id))
            if pid is None:
                continue  # no such user: nothing is added
        else:
            if await existing_ids(conn, workspace_id, [Ident("user_alias", alias)]):
                continue  # the pair is taken
            inserted = await call(
                conn,
                repo.insert_profiles,
                [new_profile_row(workspace_id, object_id(), None, ProfileState(), now)],
            )
            pid = next(iter(inserted.values()))
        label, name = alias
        added = await call(
            conn, repo.insert_aliases,
            [{"workspace_id": workspace_id, "alias_label": label, "alias_name": name,
              "profile_id": pid}],
        )  # fmt: skip
        if external_id is None and not added:
            raise RetryTransaction("the alias was taken concurrently")
        processed += added
    return {"aliases_processed": processed, "message": "success"}


async def update_aliases(conn: AsyncConnection, workspace_id: str, payload: Any) -> dict[str, Any]:
    items = _items(payload, "alias_updates")
    for item in items:
        if not all(isinstance(item.get(k), str) and item.get(k)
                   for k in ("alias_label", "old_alias_name", "new_alias_name")):  # fmt: skip
            raise BrazeError(
                400, "'alias_updates' items need string 'alias_label', 'old_alias_name' and "
                     "'new_alias_name'"
            )  # fmt: skip
    processed = 0
    for item in items:
        processed += await repo.rename_alias(
            conn, workspace_id, item["alias_label"], item["old_alias_name"], item["new_alias_name"]
        )
    return {"aliases_processed": processed, "message": "success"}
