"""Branch roads as anonymous readers see them: kept clear of the boundary markers.

Marker positions are not public (anonymous readers get them snapped to ~100 m), but a
branch road ends at its marker, so its exact line would give the position away. Each road
keeps ``public_geom``: its line (as-built, else planned) minus everything within
``CLEARANCE_M`` of any marker's exact position (NULL when nothing is left). The read
policy (geo_api.policy) serves it to anonymous callers.

It is kept current by triggers: a road's own when its lines change, and the markers'
(once per statement) when markers are added, moved or removed: the roads near their old
and new positions.

Revision ID: 0006_public_road_geometry
Revises: 0005_marker_network_access
Create Date: 2026-12-07
"""

from alembic import op

revision = "0006_public_road_geometry"
down_revision = "0005_marker_network_access"
branch_labels = None
depends_on = None

# geo_api.policy.MARKER_CLEARANCE_M is 100 m; the buffer polygon's edges lie inside its
# circle (by under 0.5% with 8 segments a quarter), so cut a little more.
CLEARANCE_M = 105
NEAR_DEG = 0.003  # > CLEARANCE_M in degrees below latitude 60


def upgrade() -> None:
    op.execute(f"""
    CREATE FUNCTION road_clear_of_markers(g geometry) RETURNS geometry
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN g IS NULL THEN NULL
            WHEN zone IS NULL THEN g
            ELSE (SELECT CASE WHEN ST_IsEmpty(d) THEN NULL ELSE d END
                  FROM (SELECT ST_LineMerge(ST_CollectionExtract(ST_Difference(g, zone), 2)) AS d) x)
        END
        FROM (SELECT ST_Union(ST_Buffer(m.geom::geography, {CLEARANCE_M})::geometry) AS zone
              FROM marker m
              WHERE m.geom && ST_Expand(g, {NEAR_DEG})
                AND ST_DWithin(m.geom::geography, g::geography, {CLEARANCE_M})) z
    $$;

    ALTER TABLE branch_road ADD COLUMN public_geom geometry(Geometry, 4326);
    UPDATE branch_road SET public_geom = road_clear_of_markers(COALESCE(as_built_geom, geom));
    CREATE INDEX branch_road_public_geom_gist ON branch_road USING gist (public_geom);

    CREATE FUNCTION branch_road_public_geom() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.public_geom := road_clear_of_markers(COALESCE(NEW.as_built_geom, NEW.geom));
        RETURN NEW;
    END $$;
    CREATE TRIGGER branch_road_public_geom BEFORE INSERT OR UPDATE OF geom, as_built_geom
        ON branch_road FOR EACH ROW EXECUTE FUNCTION branch_road_public_geom();

    -- Statement triggers with transition tables: a bulk load of markers re-cuts each road
    -- near them once, not once per marker.
    CREATE FUNCTION marker_clears_roads() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            UPDATE branch_road r SET public_geom = road_clear_of_markers(COALESCE(r.as_built_geom, r.geom))
            WHERE r.id IN (SELECT r2.id FROM new_rows m JOIN branch_road r2
                           ON r2.geom && ST_Expand(m.geom, {NEAR_DEG}) OR r2.as_built_geom && ST_Expand(m.geom, {NEAR_DEG}));
        ELSIF TG_OP = 'DELETE' THEN
            UPDATE branch_road r SET public_geom = road_clear_of_markers(COALESCE(r.as_built_geom, r.geom))
            WHERE r.id IN (SELECT r2.id FROM old_rows m JOIN branch_road r2
                           ON r2.geom && ST_Expand(m.geom, {NEAR_DEG}) OR r2.as_built_geom && ST_Expand(m.geom, {NEAR_DEG}));
        ELSE  -- moved markers: around their old and their new positions
            UPDATE branch_road r SET public_geom = road_clear_of_markers(COALESCE(r.as_built_geom, r.geom))
            WHERE r.id IN (SELECT r2.id FROM old_rows o JOIN new_rows n ON n.id = o.id
                           CROSS JOIN LATERAL (VALUES (o.geom), (n.geom)) AS p(geom)
                           JOIN branch_road r2 ON r2.geom && ST_Expand(p.geom, {NEAR_DEG})
                                               OR r2.as_built_geom && ST_Expand(p.geom, {NEAR_DEG})
                           WHERE o.geom IS DISTINCT FROM n.geom);
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER marker_clears_roads_insert AFTER INSERT ON marker
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION marker_clears_roads();
    CREATE TRIGGER marker_clears_roads_delete AFTER DELETE ON marker
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION marker_clears_roads();
    CREATE TRIGGER marker_clears_roads_update AFTER UPDATE ON marker
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION marker_clears_roads();
    """)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER IF EXISTS marker_clears_roads_insert ON marker;
    DROP TRIGGER IF EXISTS marker_clears_roads_delete ON marker;
    DROP TRIGGER IF EXISTS marker_clears_roads_update ON marker;
    DROP FUNCTION IF EXISTS marker_clears_roads();
    DROP TRIGGER IF EXISTS branch_road_public_geom ON branch_road;
    DROP FUNCTION IF EXISTS branch_road_public_geom();
    ALTER TABLE branch_road DROP COLUMN IF EXISTS public_geom;
    DROP FUNCTION IF EXISTS road_clear_of_markers(geometry);
    """)
