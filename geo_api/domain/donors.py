"""Create, update and delete donors (including groups of member donors) and campaigns.

A donor group (e.g. the emulation cluster of provincial advisory agencies) lists member
donors with a role each. Groups may contain groups, but never themselves, directly or
through other groups: adding a member is refused when the group is already among the
member's own (indirect) members. Membership changes take a transaction-level advisory
lock so two concurrent additions cannot build a cycle between them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from geo_api import layers
from geo_api.domain.resources import (
    Reference, audit, changes, check_dates, delete_row, fields, insert_audited, insert_row, lock_row,
    require_ref, require_unique_code, update_audited, update_row,
)
from geo_api.errors import Conflict, InvalidInput, NotFound
from geo_api.schemas.resources import (
    CampaignCreate, CampaignUpdate, DonorCreate, DonorMemberIn, DonorUpdate,
)

_MEMBERSHIP_LOCK = 0x646F6E6F  # any constant shared by every membership change

DONOR_REFERENCES = (
    Reference("SELECT kind::text || ' ' || amount::text || ' VND' FROM funding_tx "
              "WHERE donor_id = :id ORDER BY id", "money is recorded from it:"),
    Reference("SELECT g.code FROM donor_member dm JOIN donor g ON g.id = dm.group_id "
              "WHERE dm.member_id = :id ORDER BY g.code",
              "it is a member of group(s) (remove it from them first)"),
    Reference("SELECT code FROM campaign WHERE organiser_id = :id ORDER BY code",
              "it organises campaign(s)"),
    Reference("SELECT i.title FROM inauguration_donor idn JOIN inauguration i "
              "ON i.id = idn.inauguration_id WHERE idn.donor_id = :id ORDER BY i.held_on",
              "it is credited at inauguration(s)"),
    Reference("SELECT username FROM account WHERE donor_id = :id ORDER BY username",
              "it has user account(s)"),
)

CAMPAIGN_REFERENCES = (
    Reference("SELECT kind::text || ' ' || amount::text || ' VND' FROM funding_tx "
              "WHERE campaign_id = :id ORDER BY id", "money is recorded under it:"),
)


# ---------------------------------------------------------------------------- donors


def _check_donor(conn: Connection, d: dict[str, Any], donor_id: int | None) -> None:
    require_unique_code(conn, layers.DONORS, d["code"], donor_id)
    if donor_id is not None and not d["is_group"]:
        members = conn.execute(text("SELECT count(*) FROM donor_member WHERE group_id = :id"),
                               {"id": donor_id}).scalar_one()
        if members:
            raise InvalidInput(
                f"is_group: donor {donor_id} still has {members} member(s); remove them before "
                f"making it a single donor", field="is_group",
            )


def create_donor(conn: Connection, body: DonorCreate, actor: str) -> int:
    values = fields(body)
    members = values.pop("members")
    values["is_generated"] = False
    _check_donor(conn, values, None)
    ids = [m["member_id"] for m in members]
    found = set(conn.execute(text("SELECT id FROM donor WHERE id = ANY(CAST(:ids AS integer[]))"),
                             {"ids": ids}).scalars())
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise InvalidInput(f"members: donor {', '.join(missing)} does not exist", field="members")
    new_id = insert_row(conn, "donor", values)
    # A brand-new group cannot close a cycle: nothing contains it yet.
    conn.execute(text("""
        INSERT INTO donor_member (group_id, member_id, role)
        SELECT :g, u.member_id, u.role
        FROM unnest(CAST(:ids AS integer[]), CAST(:roles AS text[])) AS u(member_id, role)
    """), {"g": new_id, "ids": ids, "roles": [m["role"] for m in members]})
    audit(conn, actor, "create", "donor", new_id)
    return new_id


def update_donor(conn: Connection, donor_id: int, body: DonorUpdate, actor: str,
                 expected_version: int | None = None) -> None:
    current = lock_row(conn, layers.DONORS, donor_id, expected_version)
    values = changes(body)
    _check_donor(conn, {**current, **values}, donor_id)
    update_audited(conn, "donor", donor_id, values, actor, current)


def delete_donor(conn: Connection, donor_id: int, actor: str, expected_version: int | None = None) -> None:
    """A group's memberships go with it; its members stay."""
    delete_row(conn, layers.DONORS, donor_id, actor, DONOR_REFERENCES, expected_version)


def add_member(conn: Connection, group_id: int, body: DonorMemberIn, actor: str) -> None:
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MEMBERSHIP_LOCK})
    group = lock_row(conn, layers.DONORS, group_id)
    member = body.member_id
    if not group["is_group"]:
        raise InvalidInput(
            f"donor {group_id} ({group['name']}) is not a group (is_group is false); "
            f"make it a group first", field="is_group",
        )
    if member == group_id:
        raise InvalidInput("member_id: a donor cannot be its own member", field="member_id")
    require_ref(conn, "donor", member, "member_id", "donor")
    if conn.execute(text("SELECT 1 FROM donor_member WHERE group_id = :g AND member_id = :m"),
                    {"g": group_id, "m": member}).first():
        raise Conflict(f"donor {member} is already a member of group {group_id}", field="member_id")
    # Is the group already inside the would-be member (directly or through sub-groups)?
    path = conn.execute(text("""
        WITH RECURSIVE inside(id, path) AS (
            SELECT member_id, ARRAY[group_id, member_id] FROM donor_member WHERE group_id = :m
            UNION ALL
            SELECT dm.member_id, i.path || dm.member_id
            FROM donor_member dm JOIN inside i ON dm.group_id = i.id
            WHERE dm.member_id <> ALL(i.path)
        )
        SELECT path FROM inside WHERE id = :g LIMIT 1
    """), {"g": group_id, "m": member}).scalar()
    if path is not None:
        chain = " ⊃ ".join(map(str, path))
        raise InvalidInput(
            f"member_id: adding donor {member} to group {group_id} would make a cycle: "
            f"group {group_id} is already inside donor {member} ({chain})",
            field="member_id", path=path,
        )
    conn.execute(text("INSERT INTO donor_member (group_id, member_id, role) VALUES (:g, :m, :r)"),
                 {"g": group_id, "m": member, "r": body.role})
    update_row(conn, "donor", group_id, {})
    audit(conn, actor, "add_member", "donor", group_id, group["_json"])


def remove_member(conn: Connection, group_id: int, member_id: int, actor: str) -> None:
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MEMBERSHIP_LOCK})
    group = lock_row(conn, layers.DONORS, group_id)
    gone = conn.execute(text("DELETE FROM donor_member WHERE group_id = :g AND member_id = :m"),
                        {"g": group_id, "m": member_id}).rowcount
    if not gone:
        raise NotFound(f"donor {member_id} is not a member of group {group_id}")
    update_row(conn, "donor", group_id, {})
    audit(conn, actor, "remove_member", "donor", group_id, group["_json"])


# ---------------------------------------------------------------------------- campaigns


def _check_campaign(conn: Connection, c: dict[str, Any], campaign_id: int | None) -> None:
    require_unique_code(conn, layers.CAMPAIGNS, c["code"], campaign_id)
    require_ref(conn, "donor", c.get("organiser_id"), "organiser_id", "donor")
    check_dates(c.get("starts_on"), c.get("ends_on"), "starts_on", "ends_on")


def create_campaign(conn: Connection, body: CampaignCreate, actor: str) -> int:
    values = fields(body)
    values["is_generated"] = False
    _check_campaign(conn, values, None)
    return insert_audited(conn, "campaign", values, actor)


def update_campaign(conn: Connection, campaign_id: int, body: CampaignUpdate, actor: str,
                    expected_version: int | None = None) -> None:
    current = lock_row(conn, layers.CAMPAIGNS, campaign_id, expected_version)
    values = changes(body)
    _check_campaign(conn, {**current, **values}, campaign_id)
    update_audited(conn, "campaign", campaign_id, values, actor, current)


def delete_campaign(conn: Connection, campaign_id: int, actor: str,
                    expected_version: int | None = None) -> None:
    delete_row(conn, layers.CAMPAIGNS, campaign_id, actor, CAMPAIGN_REFERENCES, expected_version)
