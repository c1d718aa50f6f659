"""Accounts, roles, passwords, bearer tokens, login throttling, and the route guards.

Roles (an account has one; `post` and `donor` accounts are scoped to one post / donor):
- admin: everything, including accounts;
- planner: posts, markers, roads of any post, villages and pairs, donors and campaigns,
  all funding, inaugurations, lifecycle steps of any road (funding overrides, cancelling);
- post: its own post only — its markers' field data, new roads for its markers, its roads'
  field steps (surveyed, under construction, completed, suspended) and progress, their
  attachments and as-built tracks, its village pairs' meetings, expenditure on its roads;
- donor: its own donor only — records its pledges and commitments (disbursements and
  expenditure are confirmed by a planner or the building post, not self-declared);
- viewer: reads everything (exact coordinates included) and writes nothing;
- anonymous: reads what is public (see `geo_api.middleware` for what is kept private).

Passwords are hashed with argon2id. A login returns a random bearer token; only its
SHA-256 is stored, with an expiry (TRACKER_TOKEN_TTL_HOURS). Failed logins are throttled per
username and client address (and per address overall) with 429 and Retry-After.

The HTTP side (FastAPI dependencies that let only some roles through) is
`geo_api.guards`; this module has no web framework in it.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, text

from geo_api import layers
from geo_api.domain import idempotency
from geo_api.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests, Unauthorized
from geo_api.vocabulary import PLANNER_ROLES as PLANNERS
from geo_api.vocabulary import ROLES
from geo_api.settings import get_settings

USERNAME_PATTERN = r"^[a-z0-9_.-]{3,64}$"
MIN_PASSWORD = 10
MAX_PASSWORD = 1024


# ---------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    display_name: str
    role: str
    post_id: int | None = None
    donor_id: int | None = None

    @property
    def is_planner(self) -> bool:
        return self.role in PLANNERS


class AccountPublic(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    post_id: int | None
    donor_id: int | None
    is_active: bool = True


ACCOUNT_COLUMNS = "a.id, a.username, a.display_name, a.role::text AS role, a.post_id, a.donor_id"

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters
# Verified against when the username is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def check_password_strength(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"password: use {MIN_PASSWORD} to {MAX_PASSWORD} characters", field="password")
    if password.strip() != password or len(set(password)) < 4:
        raise InvalidInput("password: too simple (leading/trailing spaces or fewer than 4 different "
                           "characters)", field="password")


def hash_password(password: str) -> str:
    check_password_strength(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _scope_for(conn: Connection, role: str, post_code: str | None, donor_code: str | None
               ) -> tuple[int | None, int | None]:
    """(post_id, donor_id) of a new account, checked against its role."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    if (role == "post") != (post_code is not None):
        raise InvalidInput("a post account needs a post (and only a post account has one)", field="post")
    if (role == "donor") != (donor_code is not None):
        raise InvalidInput("a donor account needs a donor (and only a donor account has one)", field="donor")
    post_id = donor_id = None
    if post_code is not None:
        post_id = conn.execute(text("SELECT id FROM border_post WHERE code = :c OR id::text = :c "
                                    "ORDER BY code = :c DESC LIMIT 1"), {"c": post_code}).scalar()
        if post_id is None:
            raise InvalidInput(f"post {post_code!r} does not exist (give its code or id)", field="post")
    if donor_code is not None:
        donor_id = conn.execute(text("SELECT id FROM donor WHERE code = :c OR id::text = :c "
                                     "ORDER BY code = :c DESC LIMIT 1"), {"c": donor_code}).scalar()
        if donor_id is None:
            raise InvalidInput(f"donor {donor_code!r} does not exist (give its code or id)", field="donor")
    return post_id, donor_id


def create_account(conn: Connection, *, username: str, role: str, password: str | None,
                   display_name: str | None = None, post: str | None = None,
                   donor: str | None = None, actor: str = "cli") -> Account:
    """Insert an account (password None: it cannot log in until one is set)."""
    username = username.strip().lower()
    if not re.fullmatch(USERNAME_PATTERN, username):
        raise InvalidInput("username: 3 to 64 of a-z, 0-9, '.', '_' and '-'", field="username")
    if conn.execute(text("SELECT 1 FROM account WHERE username = :u"), {"u": username}).first():
        raise Conflict(f"username {username!r} is taken", field="username")
    post_id, donor_id = _scope_for(conn, role, post, donor)
    row = conn.execute(text(f"""
        INSERT INTO account (username, display_name, role, post_id, donor_id, password_hash)
        VALUES (:u, :d, CAST(:r AS account_role), :p, :dn, :h)
        RETURNING {ACCOUNT_COLUMNS.replace('a.', '')}
    """), {"u": username, "d": (display_name or username).strip()[:200], "r": role, "p": post_id,
           "dn": donor_id, "h": None if password is None else hash_password(password)}).mappings().one()
    audit_account(conn, actor, "create", row["id"])
    return Account(**row)


def set_password(conn: Connection, username: str, password: str, actor: str = "cli") -> None:
    """Replace the password and end every session of the account."""
    found = conn.execute(text("UPDATE account SET password_hash = :h WHERE username = :u RETURNING id"),
                         {"h": hash_password(password), "u": username.strip().lower()}).scalar()
    if found is None:
        raise NotFound(f"account {username!r} not found")
    revoke_all(conn, found)
    audit_account(conn, actor, "set_password", found)


def audit_account(conn: Connection, actor: str, action: str, account_id: int) -> None:
    """Audit without the password hash."""
    conn.execute(text("""
        INSERT INTO audit_log (actor, action, target_table, target_id, after)
        SELECT :actor, :action, 'account', CAST(a.id AS text), to_jsonb(a) - 'password_hash'
        FROM account a WHERE a.id = :id
    """), {"actor": actor, "action": action, "id": account_id})


# ---------------------------------------------------------------------------- tokens


def token_digest(token: str) -> str:
    """Tokens are 256 random bits: a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(conn: Connection, account_id: int, ttl_hours: float | None = None) -> tuple[str, datetime]:
    """A new bearer token for the account: (token, expires_at). Only its digest is stored."""
    ttl = get_settings().security.token_ttl_hours if ttl_hours is None else ttl_hours
    token = secrets.token_urlsafe(32)
    expires_at = conn.execute(text("""
        INSERT INTO auth_token (account_id, token_hash, expires_at)
        VALUES (:a, :h, now() + make_interval(secs => :s)) RETURNING expires_at
    """), {"a": account_id, "h": token_digest(token), "s": ttl * 3600}).scalar_one()
    return token, expires_at


def account_for_token(conn: Connection, token: str) -> Account | None:
    """The active account a live token belongs to, else None."""
    if not token or len(token) > 200:
        return None
    row = conn.execute(text(f"""
        SELECT {ACCOUNT_COLUMNS} FROM auth_token t JOIN account a ON a.id = t.account_id
        WHERE t.token_hash = :h AND t.expires_at > now() AND a.is_active
    """), {"h": token_digest(token)}).mappings().first()
    return Account(**row) if row else None


def revoke_token(conn: Connection, token: str) -> None:
    conn.execute(text("DELETE FROM auth_token WHERE token_hash = :h"), {"h": token_digest(token)})


def revoke_all(conn: Connection, account_id: int) -> None:
    conn.execute(text("DELETE FROM auth_token WHERE account_id = :a"), {"a": account_id})


# ---------------------------------------------------------------------------- login


def _throttle(conn: Connection, username: str, client_ip: str) -> None:
    """429 with Retry-After once too many logins failed recently (since the last success)."""
    s = get_settings().security
    for where, limit, who in (
        ("username = :u AND client_ip = :ip", s.login_max_failures, "this username from your address"),
        ("client_ip = :ip", s.login_ip_max_failures, "your address"),
    ):
        row = conn.execute(text(f"""
            SELECT count(*) AS n,
                   EXTRACT(EPOCH FROM min(at) + make_interval(secs => :w) - clock_timestamp()) AS wait
            FROM (SELECT at FROM login_attempt
                  WHERE {where} AND NOT succeeded AND at > clock_timestamp() - make_interval(secs => :w)
                    AND at > COALESCE((SELECT max(at) FROM login_attempt WHERE {where} AND succeeded),
                                      '-infinity')
                  ORDER BY at DESC LIMIT :limit) f
        """), {"u": username, "ip": client_ip, "w": s.login_window_seconds, "limit": limit}).one()
        if row.n >= limit:
            wait = max(1, math.ceil(float(row.wait or 1)))
            raise TooManyRequests(f"too many failed logins for {who}; try again in {wait} s",
                                  retry_after=wait)


def login(engine: Engine, username: str, password: str, client_ip: str) -> tuple[str, datetime, Account]:
    """Check the password (throttled); (token, expires_at, account) or 401 / 429.

    The attempt is recorded in its own committed transaction, so a failure counts even
    though the request fails.
    """
    username = username.replace("\x00", "").strip().lower()[:200]
    client_ip = (client_ip or "unknown")[:100]
    with engine.begin() as conn:
        # One login at a time per username and address: the count cannot be raced past.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 7))"),
                     {"k": f"{username} {client_ip}"})
        _throttle(conn, username, client_ip)
        row = conn.execute(text(f"SELECT {ACCOUNT_COLUMNS}, a.password_hash, a.is_active "
                                "FROM account a WHERE a.username = :u"), {"u": username}).mappings().first()
        ok = verify_password(row["password_hash"] if row else None, password) and bool(row and row["is_active"])
        conn.execute(text("INSERT INTO login_attempt (username, client_ip, succeeded) VALUES (:u, :ip, :ok)"),
                     {"u": username, "ip": client_ip, "ok": ok})
        if ok:
            account = Account(**{k: row[k] for k in ("id", "username", "display_name", "role",
                                                     "post_id", "donor_id")})
            if _hasher.check_needs_rehash(row["password_hash"]):
                conn.execute(text("UPDATE account SET password_hash = :h WHERE id = :id"),
                             {"h": _hasher.hash(password), "id": account.id})
            token, expires_at = issue_token(conn, account.id)
            housekeeping(conn)
    if not ok:
        raise Unauthorized("wrong username or password (or the account is disabled)")
    return token, expires_at, account


def housekeeping(conn: Connection) -> None:
    """Drop expired tokens, old login attempts and idempotency keys past their retention."""
    s = get_settings().security
    conn.execute(text("DELETE FROM auth_token WHERE expires_at < now()"))
    conn.execute(text("DELETE FROM login_attempt WHERE at < now() - make_interval(secs => :w) - interval '1 day'"),
                 {"w": s.login_window_seconds})
    idempotency.purge_expired(conn, s.idempotency_retention_hours)


# ---------------------------------------------------------------------------- scoping
# A post account acts on its own post's rows only. Each entry: SQL giving the post
# responsible for row :id (locked, so it cannot move to another post meanwhile).

# The layers declare theirs in the catalogue (`Layer.owner_post`; none: no post owns it).
OWNING_POST = {
    **{layer.table: (layer.title, layer.owner_post or f"SELECT NULL::integer FROM {layer.table} WHERE id = :id")
       for layer in layers.LAYERS},
    "road_event": ("road event", "SELECT r.post_id FROM road_event e JOIN branch_road r "
                                 "ON r.id = e.road_id WHERE e.id = :id FOR UPDATE"),
    "attachment": ("attachment", """
        SELECT COALESCE(r.post_id, er.post_id, p.post_id) FROM attachment a
        LEFT JOIN branch_road r ON r.id = a.road_id
        LEFT JOIN road_event e ON e.id = a.road_event_id LEFT JOIN branch_road er ON er.id = e.road_id
        LEFT JOIN pair_meeting m ON m.id = a.meeting_id LEFT JOIN village_pair p ON p.id = m.pair_id
        WHERE a.id = :id"""),
}


def require_own_post(conn: Connection, account: Account, table: str, item_id: int) -> None:
    """Planners and admins pass; a post account only for rows of its own post (else 403).

    A row that does not exist passes: the domain function then answers 404.
    """
    if account.is_planner:
        return
    title, sql = OWNING_POST[table]
    if account.role != "post":
        raise Forbidden(f"a {account.role} account cannot change a {title}")
    row = conn.execute(text(sql), {"id": item_id}).first()
    if row is not None and row[0] != account.post_id:
        raise Forbidden(f"{title} {item_id} is not in the care of your post (id {account.post_id}); "
                        "a post account changes only its own post's data", post_id=account.post_id)


def only_fields(account: Account, body: BaseModel, allowed: Iterable[str], what: str) -> None:
    """Refuse (403) a body setting fields this role may not set, naming them."""
    extra = sorted(set(body.model_fields_set) - set(allowed))
    if extra:
        raise Forbidden(f"a {account.role} account may not set {', '.join(extra)} of a {what}; "
                        f"it may set: {', '.join(sorted(allowed))}", fields=extra)


def account_json(account: Account, **extra: Any) -> dict[str, Any]:
    return {"id": account.id, "username": account.username, "display_name": account.display_name,
            "role": account.role, "post_id": account.post_id, "donor_id": account.donor_id, **extra}


# Fields a post account may set. It keeps its markers' field data current and asks for
# roads to its markers: it creates a road for its own post and edits its details, while
# post_id, estimates and contractors stay with planners.
POST_MARKER_FIELDS = frozenset({"access", "terrain_difficulty", "requested_by_post",
                                "last_inspected_on", "notes"})
POST_ROAD_FIELDS = frozenset({"code", "name", "marker_ids", "geometry", "crs", "province", "district",
                              "commune", "surface", "width_m", "planned_start", "planned_end", "notes"})
POST_ROAD_UPDATE_FIELDS = POST_ROAD_FIELDS - {"code"}

# Lifecycle steps a post account reports from the field; funding decisions (→funded, with
# or without an override) and cancelling are a planner's.
POST_TRANSITIONS = frozenset({"surveyed", "under_construction", "completed", "suspended"})


def check_transition_rights(account: Account, to_status: str, override_reason: str | None) -> None:
    if account.is_planner:
        return
    if account.role != "post":
        raise Forbidden(f"a {account.role} account cannot move roads through their lifecycle")
    if override_reason is not None:
        raise Forbidden("override_reason: only a planner may fund a road before commitments cover "
                        "its estimate", field="override_reason")
    if to_status not in POST_TRANSITIONS:
        raise Forbidden(f"to_status: a post account reports {', '.join(sorted(POST_TRANSITIONS))}; "
                        f"moving a road to {to_status} is a planner's decision", field="to_status")
