"""Safe retries: a POST sent with an Idempotency-Key is carried out once per account and key.

The key is claimed *inside the request's own transaction*, before anything is written, and
the response is stored in that same transaction just before it commits. So:
- a retry after success finds the stored response and gets it back unchanged (same status,
  body, Location and ETag), and nothing new is created;
- a retry while the first request is still running waits on the key's row lock, then
  answers from what the first one stored (or, if the first one failed and rolled back,
  claims the key and runs normally);
- a failed request (4xx) stores nothing: fixing the body and retrying with the same key
  is allowed;
- the same key with a different request (method, path or body) is refused with 422.

Keys belong to one account (two accounts may use the same key) and are kept for
TRACKER_IDEMPOTENCY_RETENTION_HOURS (7 days by default); after that a key may be reused
and `purge_expired` (run at every login) deletes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from geo_api.errors import Conflict, InvalidInput

KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"  # printable ASCII, no spaces
REPLAYED_HEADERS = ("location", "etag", "content-type")


def fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the request: method, path and body (JSON bodies compared by content, so
    key order and whitespace do not matter)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    h = hashlib.sha256(f"{method.upper()} {path}\n".encode())
    h.update(canonical)
    return h.hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class IdempotentRequest:
    """One request's key, bound to its account and fingerprint."""

    account_id: int
    key: str
    request_hash: str
    retention_hours: int = 168
    replayed: bool = field(default=False, init=False)

    def claim(self, conn: Connection) -> StoredResponse | None:
        """Reserve the key in this transaction (None) or return the response stored under it."""
        params = {"a": self.account_id, "k": self.key, "h": self.request_hash,
                  "keep": self.retention_hours}
        if conn.execute(text("""
            INSERT INTO idempotency_key (account_id, key, request_hash) VALUES (:a, :k, :h)
            ON CONFLICT (account_id, key) DO NOTHING RETURNING 1
        """), params).first():
            return None
        row = conn.execute(text("""
            SELECT request_hash, status_code, response_headers, response_body,
                   created_at < now() - make_interval(hours => :keep) AS expired
            FROM idempotency_key WHERE account_id = :a AND key = :k FOR UPDATE
        """), params).mappings().one()
        if row["expired"]:  # past its retention: the key starts afresh
            conn.execute(text("""
                UPDATE idempotency_key SET request_hash = :h, status_code = NULL, response_headers = NULL,
                       response_body = NULL, created_at = now()
                WHERE account_id = :a AND key = :k
            """), params)
            return None
        if row["request_hash"] != self.request_hash:
            raise InvalidInput(
                f"Idempotency-Key {self.key!r} was already used for a different request; "
                "send a new key for a new request", field="Idempotency-Key")
        if row["status_code"] is None:  # only if a request stored no response; should not happen
            raise Conflict(f"the request with Idempotency-Key {self.key!r} has not finished; retry later")
        self.replayed = True
        return StoredResponse(row["status_code"], dict(row["response_headers"] or {}),
                              bytes(row["response_body"] or b""))

    def remember(self, conn: Connection, status: int, headers: dict[str, str], body: bytes) -> None:
        """Store the response (in the transaction that made it)."""
        kept = {k.lower(): v for k, v in headers.items() if k.lower() in REPLAYED_HEADERS}
        conn.execute(text("""
            UPDATE idempotency_key SET status_code = :s, response_headers = CAST(:hd AS jsonb),
                   response_body = :b
            WHERE account_id = :a AND key = :k
        """), {"s": status, "hd": json.dumps(kept), "b": body, "a": self.account_id, "k": self.key})


def purge_expired(conn: Connection, retention_hours: int) -> int:
    """Delete keys older than the retention; returns how many."""
    return conn.execute(text("DELETE FROM idempotency_key WHERE created_at < now() - make_interval(hours => :h)"),
                        {"h": retention_hours}).rowcount
