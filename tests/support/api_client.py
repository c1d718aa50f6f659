"""Accounts and an authenticated TestClient for the tests (issue 4).

Write routes need an account. Tests create accounts directly in the database and use
bearer tokens; `ApiClient` is a TestClient logged in as one account that, like a client
that reads before it writes, sends the current ETag as If-Match when a test does not give
one (tests of If-Match itself give it, or use a plain TestClient).
"""

from __future__ import annotations

import itertools
import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine

from geo_api.layers import LAYERS

_ROAD_STEP = re.compile(r"^/api/roads/(\d+)/(transitions|progress|as-built-from-gpx)$")
# Items whose writes need If-Match: the versioned layers of the catalogue.
_VERSIONED_ITEM = re.compile(
    rf"^/api/({'|'.join(re.escape(layer.name) for layer in LAYERS if layer.versioned)})/\d+$")
_account_n = itertools.count(1)


def account_headers(db: Engine | str, role: str = "admin", *, username: str | None = None,
                    post_id: int | None = None, donor_id: int | None = None) -> dict[str, str]:
    """Bearer headers of an account made (or re-scoped, by username) in database `db`."""
    from sqlalchemy import text

    from geo_api.auth import issue_token

    username = username or f"{role}-{next(_account_n)}"
    eng = db if isinstance(db, Engine) else create_engine(db)
    try:
        with eng.begin() as conn:
            account_id = conn.execute(text("""
                INSERT INTO account (username, display_name, role, post_id, donor_id)
                VALUES (:u, :u, CAST(:r AS account_role), :p, :d)
                ON CONFLICT (username) DO UPDATE SET role = EXCLUDED.role, post_id = EXCLUDED.post_id,
                    donor_id = EXCLUDED.donor_id, is_active = true
                RETURNING id
            """), {"u": username, "r": role, "p": post_id, "d": donor_id}).scalar_one()
            token, _ = issue_token(conn, account_id)
    finally:
        if eng is not db:
            eng.dispose()
    return {"Authorization": f"Bearer {token}"}


class ApiClient(TestClient):
    """A TestClient logged in as one account (admin "tester" unless told otherwise)."""

    def __init__(self, app, db: Engine | str, role: str = "admin", username: str = "tester",
                 post_id: int | None = None, donor_id: int | None = None, **kwargs):
        super().__init__(app, **kwargs)
        self.db = db
        self.headers.update(account_headers(db, role, username=username, post_id=post_id,
                                            donor_id=donor_id))

    def as_(self, username: str, role: str = "admin", post_id: int | None = None,
            donor_id: int | None = None) -> dict[str, str]:
        """Headers acting as another account (made on first use)."""
        return account_headers(self.db, role, username=username, post_id=post_id, donor_id=donor_id)

    def request(self, method, url, **kwargs):
        headers = dict(kwargs.get("headers") or {})
        path = str(url).split("?")[0]
        if not any(k.lower() == "if-match" for k in headers):
            target = None
            if method.upper() in ("PATCH", "DELETE") and _VERSIONED_ITEM.match(path):
                target = path
            elif method.upper() == "POST" and (m := _ROAD_STEP.match(path)):
                target = f"/api/roads/{m[1]}"
            if target is not None:
                auth = {k: v for k, v in headers.items() if k.lower() == "authorization"}
                etag = super().request("GET", target, headers=auth).headers.get("etag")
                headers["If-Match"] = etag or '"0"'  # 0: no such item, the write answers 404
                kwargs["headers"] = headers
        return super().request(method, url, **kwargs)
