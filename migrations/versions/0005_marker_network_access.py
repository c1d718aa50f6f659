"""Each marker's nearest network edge, kept between planner runs.

The planner needs, for every marker, the nearest road-network edge: one index-ordered
nearest-neighbour search per marker, the bulk of its work (about 65 µs per marker against
a million edges). The network changes on import, markers seldom; planners ask again and
again with other weights, provinces and budgets. So the answer is kept here and reused
while it is current:

- ``network_version`` has one row, bumped by a statement trigger on every change to
  ``road_network`` (insert, update, delete, truncate), in the changing transaction;
- a row of ``marker_network_access`` is current when its ``network_version`` equals that
  row's and its ``marker_xmin`` equals the marker row's ``xmin`` (any update of the marker
  gives it a new one). Both are read in the statement that computes the row, so a row can
  never claim a version it was not computed against.

Stale and missing rows are recomputed by the planner before it uses the table
(``planner.REFRESH_SQL``). Unlogged: it is derived data, emptied by a crash and rebuilt on
the next planner run.

Revision ID: 0005_marker_network_access
Revises: 0004_accounts_security
Create Date: 2026-11-23
"""

import os

from alembic import op

revision = "0005_marker_network_access"
down_revision = "0004_accounts_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE network_version (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        version bigint NOT NULL
    )
    """)
    op.execute("INSERT INTO network_version VALUES (true, 1)")
    op.execute("""
    CREATE FUNCTION bump_network_version() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO network_version VALUES (true, 1)
        ON CONFLICT (one) DO UPDATE SET version = network_version.version + 1;
        RETURN NULL;
    END $$
    """)
    op.execute("""
    CREATE TRIGGER road_network_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON road_network
        FOR EACH STATEMENT EXECUTE FUNCTION bump_network_version()
    """)
    op.execute("""
    CREATE UNLOGGED TABLE marker_network_access (
        marker_id integer PRIMARY KEY REFERENCES marker (id) ON DELETE CASCADE,
        marker_xmin xid NOT NULL,
        network_version bigint NOT NULL,
        edge_id bigint,             -- NULL: no network at all
        highway text,
        d double precision,         -- planar distance, longitudes scaled by cos(latitude), degrees
        dist_m double precision,    -- on the spheroid, metres
        vid bigint,                 -- the edge's end nearer the marker: where routing starts
        access_m double precision,  -- marker to that vertex, metres
        near_lon double precision,  -- the edge's point nearest the marker
        near_lat double precision
    )
    """)
    # The app's role (migration 0004) also gets these through its default privileges;
    # granted here too in case another login runs this migration.
    role = os.environ.get("TRACKER_APP_DB_ROLE", "tracker_app").strip()
    if role:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON marker_network_access, network_version TO {role}")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS marker_network_access")
    op.execute("DROP TRIGGER IF EXISTS road_network_changed ON road_network")
    op.execute("DROP FUNCTION IF EXISTS bump_network_version()")
    op.execute("DROP TABLE IF EXISTS network_version")
