"""Offline queue sync: a post's phone sends the field updates it queued while offline.

Each item names a road, the road's version the officer last read (`base_version`), when
it was recorded (`client_time`) and a client id. The server:

1. applies the items in client order (`client_time`, then the order sent), whatever order
   they arrive in — a queue replayed reversed gives the same result;
2. skips an item whose client id it has already seen (this account), answering with the
   result stored the first time — a queue replayed twice changes nothing;
3. applies an item only if the road has not been changed by anyone else since
   `base_version`: the road is at `base_version`, or every change since was made by this
   account's own earlier sync items (a phone queues several steps on one road against the
   version it read). Otherwise the item is a *conflict*: nothing is written and the
   road's current state is returned for the officer to re-base — never overwritten;
4. runs each item in its own savepoint, so one refused item (conflict, forbidden, a rule
   of the lifecycle) leaves the others and the data as they were.

The result of every item (applied or not) is kept in `sync_item` under its client id.
Actions: `transition`, `progress` and `update` take the bodies of POST
/api/roads/{id}/transitions, POST /api/roads/{id}/progress and PATCH /api/roads/{id},
with the same rules and the same rights (`geo_api.auth`).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from geo_api.auth import (
    POST_ROAD_UPDATE_FIELDS, Account, check_transition_rights, only_fields, require_own_post,
)
from geo_api.domain import lifecycle, resources
from geo_api.errors import (
    SQLSTATE_STATUS, DomainError, InvalidInput, NotFound, PreconditionFailed, status_for,
)
from geo_api.schemas.lifecycle import ProgressCreate, TransitionCreate
from geo_api.schemas.resources import RoadUpdate
from geo_api.schemas.sync import SyncItem
from geo_api.settings import get_settings

OUTCOME_BY_STATUS = {403: "forbidden", 404: "not_found", 409: "conflict", 412: "conflict"}


def sync(conn: Connection, account: Account, items: list[SyncItem]) -> dict[str, Any]:
    """Apply a queue; the per-item results in the order sent, with counts."""
    limit = get_settings().security.sync_max_items
    if len(items) > limit:
        raise InvalidInput(f"items: at most {limit} per sync (TRACKER_SYNC_MAX_ITEMS); send the rest "
                           "in another request", field="items")
    results: list[dict[str, Any] | None] = [None] * len(items)
    for i in sorted(range(len(items)), key=lambda i: (items[i].client_time, i)):
        results[i] = apply_item(conn, account, items[i])
    fresh = [r for r in results if not r["duplicate"]]
    return {
        "results": results,
        "applied": sum(r["outcome"] == "applied" for r in fresh),
        "duplicates": len(results) - len(fresh),
        "conflicts": sum(r["outcome"] == "conflict" for r in fresh),
        "failed": sum(r["outcome"] in ("rejected", "forbidden", "not_found") for r in fresh),
    }


def apply_item(conn: Connection, account: Account, item: SyncItem) -> dict[str, Any]:
    key = {"a": account.id, "c": item.client_id}
    claimed = conn.execute(text("""
        INSERT INTO sync_item (account_id, client_id, road_id, action, client_time)
        VALUES (:a, :c, :r, :action, :t) ON CONFLICT (account_id, client_id) DO NOTHING RETURNING 1
    """), {**key, "r": item.road_id, "action": item.action, "t": item.client_time}).first()
    if claimed is None:  # seen before (maybe by a concurrent sync, which we waited for)
        stored = conn.execute(text("SELECT result FROM sync_item WHERE account_id = :a AND client_id = :c"),
                              key).scalar_one()
        return {**stored, "duplicate": True}
    before = after = None
    try:
        with conn.begin_nested():
            before, after = _apply(conn, account, item)
        result = _result(item, "applied", 200, None, _road(conn, item.road_id))
    except DomainError as exc:
        status = status_for(exc)
        result = _result(item, OUTCOME_BY_STATUS.get(status, "rejected"), status, exc.message,
                         _road(conn, item.road_id) if status in (409, 412) else None)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}"
                            for e in exc.errors(include_url=False))
        result = _result(item, "rejected", 422, f"payload: {reasons}", None)
    except DBAPIError as exc:
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate not in SQLSTATE_STATUS:
            raise
        status, _, what = SQLSTATE_STATUS[sqlstate]
        result = _result(item, OUTCOME_BY_STATUS.get(status, "rejected"), status, f"the item {what}", None)
    conn.execute(text("""
        UPDATE sync_item SET outcome = :o, version_before = :vb, version_after = :va,
               result = CAST(:res AS jsonb)
        WHERE account_id = :a AND client_id = :c
    """), {**key, "o": result["outcome"], "vb": before, "va": after,
           "res": json.dumps(result, ensure_ascii=False, default=str)})
    return {**result, "duplicate": False}


def _apply(conn: Connection, account: Account, item: SyncItem) -> tuple[int, int]:
    """Apply one item or raise; (road version before, after)."""
    road = conn.execute(text("SELECT version FROM branch_road WHERE id = :id FOR UPDATE"),
                        {"id": item.road_id}).first()
    if road is None:
        raise NotFound(f"branch road {item.road_id} not found")
    require_own_post(conn, account, "branch_road", item.road_id)
    if not based_on_current(conn, account.id, item.road_id, item.base_version, road.version):
        raise _conflict(item, road.version)
    payload = item.payload
    if item.action == "transition":
        req = TransitionCreate.model_validate({"occurred_at": item.client_time, **payload})
        check_transition_rights(account, req.to_status, req.override_reason)
        lifecycle.apply_transition(conn, item.road_id, req, account.username, road.version)
    elif item.action == "progress":
        req = ProgressCreate.model_validate({"occurred_at": item.client_time, **payload})
        lifecycle.report_progress(conn, item.road_id, req, account.username, road.version)
    else:
        body = RoadUpdate.model_validate(payload)
        if not account.is_planner:  # the same fields as PATCH /api/roads/{id}
            only_fields(account, body, POST_ROAD_UPDATE_FIELDS, "branch road")
        resources.update_road(conn, item.road_id, body, account.username, road.version)
    after = conn.execute(text("SELECT version FROM branch_road WHERE id = :id"), {"id": item.road_id}).scalar_one()
    return road.version, after


def based_on_current(conn: Connection, account_id: int, road_id: int, base: int, current: int) -> bool:
    """Is the road at `base`, or did only this account's applied sync items move it on since?"""
    if base == current:
        return True
    return conn.execute(text("""
        WITH RECURSIVE chain(v) AS (
            SELECT CAST(:base AS integer)
            UNION
            SELECT s.version_after FROM sync_item s JOIN chain c ON s.version_before = c.v
            WHERE s.account_id = :a AND s.road_id = :r AND s.outcome = 'applied'
        )
        SELECT EXISTS (SELECT 1 FROM chain WHERE v = :current)
    """), {"base": base, "a": account_id, "r": road_id, "current": current}).scalar_one()


def _conflict(item: SyncItem, current: int) -> DomainError:
    return PreconditionFailed(
        f"branch road {item.road_id} was changed by someone else since version {item.base_version} "
        f"(it is at version {current}); this item was not applied — reload the road and decide again",
        version=current)


def _road(conn: Connection, road_id: int) -> dict[str, Any] | None:
    row = conn.execute(text("SELECT status::text AS status, progress_pct, version FROM branch_road "
                            "WHERE id = :id"), {"id": road_id}).mappings().first()
    return dict(row) if row else None


def _result(item: SyncItem, outcome: str, status: int, detail: str | None,
            road: dict[str, Any] | None) -> dict[str, Any]:
    return {"client_id": item.client_id, "road_id": item.road_id, "action": item.action,
            "outcome": outcome, "status": status, "detail": detail, "road": road}
