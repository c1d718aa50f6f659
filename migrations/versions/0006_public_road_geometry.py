"""Branch roads as anonymous readers see them: kept clear of the boundary markers.

Marker positions are not public (anonymous readers get them snapped to ~100 m), but a
branch road ends at its marker, so its exact line would give the position away. Each road
keeps ``public_geom``: its line (as-built, else planned) minus everything within
``CLEARANCE_M`` of any marker's exact position (NULL when nothing is left). The read
policy (geo_api.policy) serves it to anonymous callers.

It is kept current by triggers: a road's own when its lines change, and a marker's when a
marker is added, moved or removed (the roads near its old and new positions).

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

    CREATE FUNCTION marker_clears_roads() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE branch_road r SET public_geom = road_clear_of_markers(COALESCE(r.as_built_geom, r.geom))
        WHERE (TG_OP <> 'INSERT' AND (r.geom && ST_Expand(OLD.geom, {NEAR_DEG})
                                      OR r.as_built_geom && ST_Expand(OLD.geom, {NEAR_DEG})))
           OR (TG_OP <> 'DELETE' AND (r.geom && ST_Expand(NEW.geom, {NEAR_DEG})
                                      OR r.as_built_geom && ST_Expand(NEW.geom, {NEAR_DEG})));
        RETURN NULL;
    END $$;
    CREATE TRIGGER marker_clears_roads AFTER INSERT OR DELETE OR UPDATE OF geom
        ON marker FOR EACH ROW EXECUTE FUNCTION marker_clears_roads();
    """)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER IF EXISTS marker_clears_roads ON marker;
    DROP FUNCTION IF EXISTS marker_clears_roads();
    DROP TRIGGER IF EXISTS branch_road_public_geom ON branch_road;
    DROP FUNCTION IF EXISTS branch_road_public_geom();
    ALTER TABLE branch_road DROP COLUMN IF EXISTS public_geom;
    DROP FUNCTION IF EXISTS road_clear_of_markers(geometry);
    """)
