"""A small world for write-side tests: a fresh database at the migration head with the
real border lines, and SQL builders of posts, markers, roads, donors and ledger rows;
`snapshot` fingerprints tables so a refused request can be shown to change nothing."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import Engine, create_engine, text

from geo_api import ROOT, db

BORDERS = ROOT / "data" / "borders" / "vn_land_borders.geojson"
# Places inside Viet Nam that roads run from, towards a marker on the border.
INLAND = {"Lạng Sơn": (106.47, 22.25), "Cao Bằng": (106.26, 22.60), "Quảng Trị": (106.80, 16.60)}
WRITE_TABLES = ("branch_road", "road_marker", "road_event", "funding_tx", "inauguration",
                "inauguration_road", "inauguration_donor", "audit_log")


def migrated_database(fresh_database) -> str:
    """A new database at the migration head with the three border segments loaded."""
    url = fresh_database()
    db.upgrade(url)
    eng = create_engine(url)
    with eng.begin() as conn:
        for f in json.loads(BORDERS.read_text(encoding="utf-8"))["features"]:
            p = f["properties"]
            conn.execute(text("""
                INSERT INTO border_segment (code, neighbour_iso3, name_vi, name_en, geom)
                VALUES (:code, :iso, :vi, :en, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326)))
            """), {"code": p["code"], "iso": p["neighbour_iso3"], "vi": p["name_vi"], "en": p["name_en"],
                   "g": json.dumps(f["geometry"])})
    eng.dispose()
    return url


def snapshot(engine: Engine, tables=WRITE_TABLES) -> dict[str, tuple[int, str]]:
    """Row count and checksum of each table: equal snapshots mean nothing was written."""
    out = {}
    with engine.connect() as conn:
        for t in tables:
            out[t] = tuple(conn.execute(text(
                f"SELECT count(*), md5(COALESCE(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {t} t"
            )).one())
    return out


class World:
    """Builds test data with SQL (independent of the create endpoints)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.n = 0

    def _one(self, sql: str, **params):
        with self.engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return result.scalar() if result.returns_rows else None

    def code(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    def post(self, name="Đồn Biên phòng Bình Nghi", province="Lạng Sơn", segment="VN-CN") -> int:
        lon, lat = INLAND[province]
        return self._one("""
            INSERT INTO border_post (code, name, province, district, segment_id, geom, is_generated)
            SELECT :code, :name, :province, 'Tràng Định', s.id, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), false
            FROM border_segment s WHERE s.code = :segment RETURNING id
        """, code=self.code("POST"), name=name, province=province, segment=segment, lon=lon, lat=lat)

    def marker(self, near: tuple[float, float], number: str | None = None, segment="VN-CN",
               province="Lạng Sơn", post_id: int | None = None) -> int:
        """A marker on the segment's line, at its point closest to `near`."""
        self.n += 1
        return self._one("""
            INSERT INTO marker (segment_id, number, geom, province, district, post_id)
            SELECT s.id, :number, ST_ClosestPoint(s.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)),
                   :province, 'Tràng Định', :post FROM border_segment s WHERE s.code = :segment
            RETURNING id
        """, number=number or str(1000 + self.n), segment=segment, province=province, post=post_id,
            lon=near[0], lat=near[1])

    def line_to(self, marker_id: int, inland: tuple[float, float] = INLAND["Lạng Sơn"],
                step: float = 0.012, bend: float = 0.0) -> dict:
        """A GeoJSON LineString from about 1.5 km inland to the marker."""
        with self.engine.connect() as conn:
            mx, my = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM marker WHERE id = :id"),
                                  {"id": marker_id}).one()
        dx, dy = inland[0] - mx, inland[1] - my
        norm = (dx * dx + dy * dy) ** 0.5
        ux, uy = dx / norm, dy / norm
        start = [round(mx + ux * step, 6), round(my + uy * step, 6)]
        middle = [round(mx + ux * step / 2 - uy * bend, 6), round(my + uy * step / 2 + ux * bend, 6)]
        return {"type": "LineString", "coordinates": [start, middle, [round(mx, 7), round(my, 7)]]}

    def road(self, marker_id: int, post_id: int, status="proposed", estimate: int | None = 1_200_000_000,
             province="Lạng Sơn", completed_on: date | None = None, progress=0, code=None) -> int:
        line = self.line_to(marker_id, INLAND[province])
        if status in ("completed", "inaugurated") and completed_on is None:
            completed_on = date(2022, 10, 1)
        road_id = self._one("""
            INSERT INTO branch_road (code, name, post_id, province, district, status, geom, estimated_cost,
                                     completed_on, progress_pct, is_generated)
            VALUES (:code, :name, :post, :province, 'Tràng Định', CAST(:status AS road_status),
                    ST_SetSRID(ST_GeomFromGeoJSON(:line), 4326), :estimate, :completed_on, :progress, false)
            RETURNING id
        """, code=code or self.code("ROAD"), name="Đường nhánh thử", post=post_id, province=province,
            status=status, line=json.dumps(line), estimate=estimate, completed_on=completed_on,
            progress=100 if status in ("completed", "inaugurated") else progress)
        self._one("INSERT INTO road_marker (road_id, marker_id) VALUES (:r, :m)", r=road_id, m=marker_id)
        return road_id

    def donor(self, name="Sở Ngoại vụ", kind="agency", members: tuple[int, ...] = ()) -> int:
        donor_id = self._one("""
            INSERT INTO donor (code, name, kind, is_group, province, is_generated)
            VALUES (:code, :name, CAST(:kind AS donor_kind), :group, 'Lạng Sơn', false) RETURNING id
        """, code=self.code("DONOR"), name=name, kind=kind, group=bool(members))
        for m in members:
            self._one("INSERT INTO donor_member (group_id, member_id) VALUES (:g, :m)", g=donor_id, m=m)
        return donor_id

    def campaign(self, province="Lạng Sơn", target: int | None = 5_000_000_000) -> int:
        return self._one("""
            INSERT INTO campaign (code, name, province, plan_date, target_amount, is_generated)
            VALUES (:code, 'Kế hoạch 39/KH-CTĐ', :province, '2022-02-18', :target, false) RETURNING id
        """, code=self.code("CAMPAIGN"), province=province, target=target)

    def fund(self, donor_id: int, kind: str, amount: int, road_id: int | None = None,
             campaign_id: int | None = None, tx_date: str = "2022-05-01") -> int:
        return self._one("""
            INSERT INTO funding_tx (donor_id, road_id, campaign_id, kind, amount, tx_date)
            VALUES (:d, :r, :c, CAST(:k AS funding_kind), :a, :t) RETURNING id
        """, d=donor_id, r=road_id, c=campaign_id, k=kind, a=amount, t=tx_date)

    def status(self, road_id: int) -> str:
        return self._one("SELECT status::text FROM branch_road WHERE id = :id", id=road_id)

    def events(self, road_id: int) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT from_status::text, to_status::text FROM road_event WHERE road_id = :id ORDER BY id"),
                {"id": road_id})]


# ---------------------------------------------------------------------------- fixtures


