"""The generated demo dataset: markers, posts, roads, money, ceremonies and villages.

Everything here is generated from the real border lines in ``data/borders`` with a fixed
seed, so two loads produce the same rows. A handful of rows carry real names and dates
from the source articles (marker 1033, Bình Nghi post, the four branch roads inaugurated
at Đào Viên on 16/11/2022, the emulation cluster and its plan 39/KH-CTĐ, the Duy Tân –
Bản Phường pair and its Q2-2023 meeting); their coordinates, amounts and the other dates
are generated too, so every row keeps ``is_generated = true`` and the real ones say so in
``notes``. See ``data/demo/README.md``.

Shape of the code: ``generate()`` is pure Python (no database) and returns rows keyed by
natural keys (codes, numbers); ``load_demo()`` writes them in one transaction, one
``INSERT ... SELECT FROM jsonb_to_recordset`` per table, skipping rows that already exist,
and resolves foreign keys through the natural keys. Loading twice changes nothing.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import LineString, MultiLineString, Point
from sqlalchemy import Connection, Engine, text

from geo_api import DATA_DIR
from geo_api.vocabulary import ROAD_PATH

SEED = 20221116
# "Today" for the demo: meeting overdue flags and the latest dates are relative to it.
REFERENCE_DATE = date(2026, 11, 23)
BORDERS_FILE = DATA_DIR / "borders" / "vn_land_borders.geojson"
COUNTRIES_FILE = DATA_DIR / "borders" / "countries_near_vn.geojson"

GEOD = Geod(ellps="WGS84")
# UTM 48N: metric work (distances, road shapes) over the whole of Viet Nam's land border.
TO_UTM = Transformer.from_crs("EPSG:4326", "EPSG:32648", always_xy=True)
FROM_UTM = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True)

GENERATED_NOTE = "Dữ liệu mẫu sinh tự động (generated demo data)."
MARKER_NOTE = ("Vị trí sinh tự động dọc đường biên OSM, không phải tọa độ mốc chính thức "
               "(generated position on the OSM-derived line, not an official coordinate).")

# ---------------------------------------------------------------------------------------
# Geography tables (approximate, documented in data/demo/README.md)
# ---------------------------------------------------------------------------------------

# Where each chain of border pieces starts: tri-points A Pa Chải (VN-CN-LA) and the
# VN-LA-KH tri-point. Pieces are chained greedily from there, so VN-CN runs west→east,
# VN-LA north→south and VN-KH north→south then west to Hà Tiên.
CHAIN_START = {
    "VN-CN": (102.144, 22.399),
    "VN-LA": (102.144, 22.399),
    "VN-KH": (107.537, 14.690),
}

# Provinces in chainage order, each with the approximate point where its section ends.
# The points were placed so each section's length is close to the province's official
# border length (scaled to this generalised line), with the Cao Bằng / Lạng Sơn break
# put between Tà Lùng (Cao Bằng) and Đào Viên (Lạng Sơn). Not authoritative.
PROVINCE_BREAKS = {
    "VN-CN": [
        ("Điện Biên", (102.308, 22.534)), ("Lai Châu", (103.517, 22.599)),
        ("Lào Cai", (104.323, 22.730)), ("Hà Giang", (105.560, 23.129)),
        ("Cao Bằng", (106.562, 22.455)), ("Lạng Sơn", (107.363, 21.639)),
        ("Quảng Ninh", None),
    ],
    "VN-LA": [
        ("Điện Biên", (103.026, 21.059)), ("Sơn La", (104.404, 20.812)),
        ("Thanh Hóa", (104.847, 20.150)), ("Nghệ An", (104.903, 18.786)),
        ("Hà Tĩnh", (105.419, 18.179)), ("Quảng Bình", (106.306, 17.256)),
        ("Quảng Trị", (106.877, 16.476)), ("Thừa Thiên Huế", (107.438, 15.964)),
        ("Quảng Nam", (107.606, 15.359)), ("Kon Tum", None),
    ],
    "VN-KH": [
        ("Kon Tum", (107.408, 14.261)), ("Gia Lai", (107.552, 13.694)),
        ("Đắk Lắk", (107.517, 13.084)), ("Đắk Nông", (107.457, 12.294)),
        ("Bình Phước", (106.435, 11.713)), ("Tây Ninh", (106.206, 10.978)),
        ("Long An", (105.593, 10.967)), ("Đồng Tháp", (105.291, 10.884)),
        ("An Giang", (104.762, 10.518)), ("Kiên Giang", None),
    ],
}

# The neighbour's first-level unit facing each Vietnamese province (one per province:
# a simplification where several face one province).
NEIGHBOUR_ADMIN1 = {
    "Điện Biên": {"CHN": "Yunnan", "LAO": "Phongsaly"},
    "Lai Châu": {"CHN": "Yunnan"}, "Lào Cai": {"CHN": "Yunnan"}, "Hà Giang": {"CHN": "Yunnan"},
    "Cao Bằng": {"CHN": "Guangxi"}, "Lạng Sơn": {"CHN": "Guangxi"},
    "Quảng Ninh": {"CHN": "Guangxi"},
    "Sơn La": {"LAO": "Houaphanh"}, "Thanh Hóa": {"LAO": "Houaphanh"},
    "Nghệ An": {"LAO": "Xiangkhouang"}, "Hà Tĩnh": {"LAO": "Bolikhamsai"},
    "Quảng Bình": {"LAO": "Khammouane"}, "Quảng Trị": {"LAO": "Savannakhet"},
    "Thừa Thiên Huế": {"LAO": "Salavan"}, "Quảng Nam": {"LAO": "Sekong"},
    "Kon Tum": {"LAO": "Attapeu", "KHM": "Ratanakiri"}, "Gia Lai": {"KHM": "Ratanakiri"},
    "Đắk Lắk": {"KHM": "Mondulkiri"}, "Đắk Nông": {"KHM": "Mondulkiri"},
    "Bình Phước": {"KHM": "Kratié"}, "Tây Ninh": {"KHM": "Svay Rieng"},
    "Long An": {"KHM": "Svay Rieng"}, "Đồng Tháp": {"KHM": "Prey Veng"},
    "An Giang": {"KHM": "Takéo"}, "Kiên Giang": {"KHM": "Kampot"},
}

PROVINCE_ABBR = {
    "Điện Biên": "DB", "Lai Châu": "LCH", "Lào Cai": "LCA", "Hà Giang": "HG",
    "Cao Bằng": "CB", "Lạng Sơn": "LS", "Quảng Ninh": "QN", "Sơn La": "SL",
    "Thanh Hóa": "TH", "Nghệ An": "NA", "Hà Tĩnh": "HT", "Quảng Bình": "QB",
    "Quảng Trị": "QT", "Thừa Thiên Huế": "TTH", "Quảng Nam": "QNA", "Kon Tum": "KT",
    "Gia Lai": "GL", "Đắk Lắk": "DLK", "Đắk Nông": "DNO", "Bình Phước": "BP",
    "Tây Ninh": "TN", "Long An": "LA", "Đồng Tháp": "DT", "An Giang": "AG",
    "Kiên Giang": "KG",
}

# Markers per line: main markers numbered along the chain, sub-markers "N/k" between N
# and N+1, and a few paired markers (N and its twin "NA", e.g. on the two river banks).
MARKER_PLAN = {
    "VN-CN": {"mains": 1378, "subs": 610, "paired": 12},
    "VN-LA": {"mains": 700, "subs": 95, "paired": 5},
    "VN-KH": {"mains": 314, "subs": 33, "paired": 3},
}
ROADS_PER_LINE = {"VN-CN": 176, "VN-LA": 80, "VN-KH": 40}
STATUS_COUNTS = {  # generated roads; the four real ones are inaugurated on top
    "proposed": 48, "surveyed": 38, "funded": 34, "under_construction": 44,
    "completed": 48, "inaugurated": 42, "suspended": 22, "cancelled": 20,
}
PAIRS_PER_LINE = {"VN-CN": 6, "VN-LA": 18, "VN-KH": 12}

# ---------------------------------------------------------------------------------------
# The real cases (names and dates from the source articles in /work/shared/seeds)
# ---------------------------------------------------------------------------------------

DAO_VIEN = (106.52, 22.40)  # approximate centre of Đào Viên commune, Tràng Định
MARKER_1033 = "1033"
INAUGURATION_DAY = date(2022, 11, 16)
BINH_NGHI = {
    "code": "BP-BINH-NGHI", "name": "Đồn Biên phòng Bình Nghi", "province": "Lạng Sơn",
    "district": "Tràng Định", "commune": None, "segment": "VN-CN", "inland_km": 3.0,
    "notes": "Tên thật (real post, source: Lạng Sơn article of 16/11/2022); vị trí sinh tự động.",
}
LAO_BAO_POST = {
    "code": "BP-CKQT-LAO-BAO", "name": "Đồn Biên phòng Cửa khẩu Quốc tế Lao Bảo",
    "province": "Quảng Trị", "district": "Hướng Hóa", "commune": "Thị trấn Lao Bảo",
    "segment": "VN-LA", "inland_km": 2.0,
    "notes": "Tên thật (real post, source: Quảng Trị article of 31/07/2023); vị trí sinh tự động.",
}
LAO_BAO = (106.590, 16.620)
DUY_TAN_HINT = (106.600, 16.624)      # Lao Bảo town, east of the Sê Pôn river
BAN_PHUONG_HINT = (106.572, 16.615)   # just across the river, Lao side

CLUSTER = {
    "code": "CTD-THTH-LS", "name": "Cụm thi đua các cơ quan tham mưu tổng hợp tỉnh Lạng Sơn",
    "name_en": "Emulation cluster of the provincial advisory agencies, Lạng Sơn",
    "kind": "cluster", "is_group": True, "province": "Lạng Sơn",
    "notes": "Tên thật (real cluster, source: Lạng Sơn article of 16/11/2022).",
}
# (code, name, name_en, role in the cluster, share of each road's cost: generated)
CLUSTER_MEMBERS = [
    ("LS-VP-DDBQH-HDND", "Văn phòng Đoàn ĐBQH và HĐND tỉnh Lạng Sơn",
     "Office of the National Assembly Delegation and People's Council, Lạng Sơn", None, 12),
    ("LS-VP-UBND", "Văn phòng UBND tỉnh Lạng Sơn",
     "Office of the People's Committee, Lạng Sơn", None, 13),
    ("LS-SO-KHDT", "Sở Kế hoạch và Đầu tư tỉnh Lạng Sơn",
     "Department of Planning and Investment, Lạng Sơn", "Cụm trưởng", 20),
    ("LS-SO-NGOAI-VU", "Sở Ngoại vụ tỉnh Lạng Sơn",
     "Department of Foreign Affairs, Lạng Sơn", "Cụm phó", 19),
    ("LS-SO-TAI-CHINH", "Sở Tài chính tỉnh Lạng Sơn", "Department of Finance, Lạng Sơn", None, 12),
    ("LS-SO-NOI-VU", "Sở Nội vụ tỉnh Lạng Sơn", "Department of Home Affairs, Lạng Sơn", None, 12),
    ("LS-SO-TU-PHAP", "Sở Tư pháp tỉnh Lạng Sơn", "Department of Justice, Lạng Sơn", None, 12),
]
CAMPAIGN_39 = {
    "code": "39/KH-CTĐ",
    "name": "Kế hoạch 39/KH-CTĐ ngày 18/02/2022 của Cụm thi đua các cơ quan tham mưu tổng hợp",
    "organiser": CLUSTER["code"], "province": "Lạng Sơn", "plan_date": "2022-02-18",
    "starts_on": "2022-02-18", "ends_on": "2022-12-31", "target_amount": None,
    "notes": ("Kế hoạch thật về công tác thi đua khen thưởng năm 2022 của Cụm (real plan); "
              "ngày kết thúc 31/12/2022 là giả định."),
}
# The four roads inaugurated at Đào Viên: marker served, estimate (generated), km inland.
DAO_VIEN_ROADS = [("1033", 265_000_000, 1.2), ("1032", 198_000_000, 0.9),
                  ("1034", 232_000_000, 1.0), ("1035", 305_000_000, 1.4)]
DAO_VIEN_TITLE = "Lễ khánh thành 04 đường nhánh kiểm tra cột mốc quốc giới"
DAO_VIEN_OFFICIALS = ("Lãnh đạo Sở Kế hoạch và Đầu tư (Cụm trưởng); đại diện các cơ quan trong "
                      "Cụm thi đua các cơ quan tham mưu tổng hợp; Bộ Chỉ huy BĐBP tỉnh Lạng Sơn; "
                      "Cụm thi đua An ninh Công an tỉnh; UBND huyện Tràng Định; "
                      "Đồn Biên phòng Bình Nghi")
LAO_BAO_MEETING = {
    "held_on": "2023-07-31", "year": 2023, "quarter": 2, "place": "Thị trấn Lao Bảo",
    "topics": ["sản xuất", "giao lưu văn hóa, văn nghệ, thể thao", "tự quản đường biên, cột mốc"],
    "agreements": (
        "Tiếp tục giúp nhau sản xuất, nâng cao đời sống cho Nhân dân; tăng cường giao lưu văn "
        "hóa, văn nghệ, thể thao; phát huy vai trò quần chúng cùng nhau bảo vệ, quản lý, xây "
        "dựng đường biên giới hòa bình, hữu nghị, ổn định, hợp tác, cùng phát triển; tự quản "
        "đường biên, cột mốc, giữ gìn an ninh trật tự khóm, bản. Địa phương phối hợp Đồn Biên "
        "phòng Cửa khẩu Quốc tế Lao Bảo tuyên truyền, vận động Nhân dân thực hiện quy chế kết "
        "nghĩa và Luật Biên phòng Việt Nam năm 2020; phát huy vai trò già làng, trưởng bản, "
        "người có uy tín."),
    "notes": ("Cuộc giao ban thật (real meeting), nguồn: bài 'Giao ban kết nghĩa cụm dân cư "
              "hai bên biên giới Việt - Lào' (Văn Sáu). Các quý khác không có trong dữ liệu mẫu."),
}

# ---------------------------------------------------------------------------------------
# Geometry helpers
# ---------------------------------------------------------------------------------------


@dataclass
class Border:
    """One land border as an ordered chain of straight pieces with chainage in km.

    Chainage counts only the drawn pieces: the small gaps between disjoint pieces of the
    generalised line add nothing, so the total equals the segment's ``length_km``.
    """

    code: str
    neighbour: str
    name_vi: str
    name_en: str
    wkt: str
    pieces: list[np.ndarray]
    x0: np.ndarray = field(init=False)
    y0: np.ndarray = field(init=False)
    x1: np.ndarray = field(init=False)
    y1: np.ndarray = field(init=False)
    s0: np.ndarray = field(init=False)
    seg_km: np.ndarray = field(init=False)
    az: np.ndarray = field(init=False)
    # +1 when Viet Nam lies left of the chain's direction, -1 when right (set by Geo).
    vn_side: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        """One row per straight piece (vertex to vertex) of the chain, with its chainage."""
        start = np.concatenate([c[:-1] for c in self.pieces])
        end = np.concatenate([c[1:] for c in self.pieces])
        az, _, dist = GEOD.inv(start[:, 0], start[:, 1], end[:, 0], end[:, 1])
        keep = dist > 0
        (self.x0, self.y0), (self.x1, self.y1) = start[keep].T, end[keep].T
        self.az, self.seg_km = az[keep], dist[keep] / 1000
        self.s0 = np.concatenate([[0.0], np.cumsum(self.seg_km)[:-1]])

    @property
    def length_km(self) -> float:
        return float(self.s0[-1] + self.seg_km[-1])

    @cached_property
    def utm(self) -> MultiLineString:
        return MultiLineString([np.column_stack(TO_UTM.transform(c[:, 0], c[:, 1]))
                                for c in self.pieces])

    def at(self, chainage) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lon, lat and the line's azimuth (degrees) at the given chainages (km)."""
        ch = np.atleast_1d(np.asarray(chainage, dtype=float))
        i = np.clip(np.searchsorted(self.s0, ch, side="right") - 1, 0, len(self.s0) - 1)
        t = np.clip((ch - self.s0[i]) / self.seg_km[i], 0.0, 1.0)
        return (self.x0[i] + t * (self.x1[i] - self.x0[i]),
                self.y0[i] + t * (self.y1[i] - self.y0[i]), self.az[i])

    def chainage_of(self, lon: float, lat: float) -> float:
        """Chainage of the point on the line nearest to (lon, lat)."""
        k = math.cos(math.radians(lat))
        ax, ay = (self.x0 - lon) * k, self.y0 - lat
        dx, dy = (self.x1 - self.x0) * k, self.y1 - self.y0
        t = np.clip(-(ax * dx + ay * dy) / np.maximum(dx * dx + dy * dy, 1e-18), 0, 1)
        d2 = (ax + t * dx) ** 2 + (ay + t * dy) ** 2
        i = int(np.argmin(d2))
        return float(self.s0[i] + t[i] * self.seg_km[i])

    def _utm_at(self, chainage) -> np.ndarray:
        lon, lat, _ = self.at(chainage)
        return np.column_stack(TO_UTM.transform(lon, lat))

    def approach(self, chainage: float) -> np.ndarray:
        """Unit vector (UTM) across the line towards Viet Nam at ``chainage``."""
        a, b = self._utm_at([max(chainage - 0.03, 0.0), min(chainage + 0.03, self.length_km)])
        t = (b - a) / np.hypot(*(b - a))
        return self.vn_side * np.array([-t[1], t[0]])

    def inside_path(self, ch1: float, ch2: float, metres: float) -> list[np.ndarray]:
        """The line between two chainages, shifted ``metres`` into Viet Nam (UTM points)."""
        inner = self.s0[(self.s0 > ch1) & (self.s0 < ch2)]
        part = LineString(self._utm_at(np.union1d(np.linspace(ch1, ch2, 5), inner)))
        shifted = shapely.offset_curve(part, self.vn_side * metres, join_style="mitre", mitre_limit=2.0)
        coords = np.asarray(getattr(shifted, "geoms", [shifted])[0].coords)
        if np.hypot(*(coords[0] - part.coords[0])) > np.hypot(*(coords[-1] - part.coords[0])):
            coords = coords[::-1]
        return list(coords)

    @cached_property
    def breaks(self) -> list[tuple[str, float]]:
        """(province, chainage where its section ends), in chainage order."""
        out = []
        for province, anchor in PROVINCE_BREAKS[self.code]:
            out.append((province, self.chainage_of(*anchor) if anchor else math.inf))
        return out

    def province_at(self, chainage: float) -> str:
        for province, end in self.breaks:
            if chainage < end:
                return province
        return self.breaks[-1][0]


def _chain_pieces(geom, start: tuple[float, float]) -> list[np.ndarray]:
    """Order and orient the pieces of a (Multi)LineString into one chain from ``start``."""
    left = [np.asarray(g.coords) for g in getattr(geom, "geoms", [geom])]
    out, here = [], np.asarray(start)
    while left:
        best = min([(float(np.hypot(*(c[0] - here))), i, False) for i, c in enumerate(left)] +
                   [(float(np.hypot(*(c[-1] - here))), i, True) for i, c in enumerate(left)])
        piece = left.pop(best[1])
        piece = piece[::-1] if best[2] else piece
        out.append(piece)
        here = piece[-1]
    return out


def read_borders() -> dict[str, Border]:
    frame = gpd.read_file(BORDERS_FILE)
    borders = {}
    for row in frame.itertuples():
        borders[row.code] = Border(
            code=row.code, neighbour=row.neighbour_iso3, name_vi=row.name_vi,
            name_en=row.name_en, wkt=shapely.to_wkt(row.geometry, rounding_precision=-1),
            pieces=_chain_pieces(row.geometry, CHAIN_START[row.code]))
    return borders


def read_countries() -> dict[str, object]:
    frame = gpd.read_file(COUNTRIES_FILE)
    out = {}
    for row in frame.itertuples():
        shapely.prepare(row.geometry)
        out[row.iso3] = row.geometry
    return out


@dataclass
class Geo:
    borders: dict[str, Border]
    countries: dict[str, object]

    def __post_init__(self) -> None:
        for b in self.borders.values():
            lon, lat, az = b.at(np.linspace(1, b.length_km - 1, 60))
            x, y, _ = GEOD.fwd(lon, lat, az - 90, np.full(len(lon), 3000.0))
            left = shapely.contains_xy(self.countries["VNM"], x, y).mean()
            b.vn_side = 1 if left > 0.5 else -1

    @cached_property
    def all_lines_utm(self):
        lines = shapely.union_all([b.utm for b in self.borders.values()])
        shapely.prepare(lines)
        return lines

    def km_to_border(self, lon: float, lat: float) -> float:
        return self.all_lines_utm.distance(Point(TO_UTM.transform(lon, lat))) / 1000

    def on_side(self, iso3: str, lon: float, lat: float) -> bool:
        """Inside ``iso3``'s outline and in no other country's (the outlines overlap a little)."""
        if not shapely.contains_xy(self.countries[iso3], lon, lat):
            return False
        return not any(shapely.contains_xy(g, lon, lat)
                       for k, g in self.countries.items() if k != iso3)

    def offset(self, border: Border, chainage: float, iso3: str, km: float,
               min_km: float) -> tuple[float, float] | None:
        """A point ``km`` from the line at ``chainage``, on ``iso3``'s side, at least ``min_km``
        from any border line. Tries both normals, then slanted and shorter offsets."""
        lon, lat, az = (float(v[0]) for v in border.at(chainage))
        for scale in (1.0, 0.8, 1.25, 0.6, 1.5):
            for turn in (0, 25, -25, 50, -50):
                for side in (90, -90):
                    x, y, _ = GEOD.fwd(lon, lat, az + side + turn, km * scale * 1000)
                    if self.on_side(iso3, x, y) and self.km_to_border(x, y) >= min_km:
                        return round(x, 7), round(y, 7)
        return None


def ewkt(geom_or_xy) -> str:
    if isinstance(geom_or_xy, tuple):
        return f"SRID=4326;POINT({geom_or_xy[0]:.7f} {geom_or_xy[1]:.7f})"
    return "SRID=4326;" + shapely.to_wkt(geom_or_xy, rounding_precision=7, trim=True)


def _utm(xy: tuple[float, float]) -> np.ndarray:
    return np.array(TO_UTM.transform(*xy))


def _lonlat_line(coords_utm: np.ndarray) -> LineString:
    lon, lat = FROM_UTM.transform(coords_utm[:, 0], coords_utm[:, 1])
    return LineString(np.round(np.column_stack([lon, lat]), 7))


def _days(rng: random.Random, lo: int, hi: int) -> timedelta:
    return timedelta(days=rng.randint(lo, hi))


def _between(rng: random.Random, a: date, b: date) -> date:
    return a + timedelta(days=rng.randint(0, max(0, (b - a).days)))


def _million(x: float) -> int:
    return int(x // 1_000_000) * 1_000_000


# ---------------------------------------------------------------------------------------
# Markers and posts
# ---------------------------------------------------------------------------------------


def gen_markers(rng: random.Random, borders: dict[str, Border]) -> list[dict]:
    """Markers along each line: mains uniformly spaced (piecewise around marker 1033 on
    VN-CN, pinned to the line point nearest Đào Viên), sub-markers between mains, a few
    paired markers. Numbering follows chainage."""
    markers = []
    for code, plan in MARKER_PLAN.items():
        b = borders[code]
        n, L = plan["mains"], b.length_km
        if code == "VN-CN":
            pin = b.chainage_of(*DAO_VIEN)
            k = int(MARKER_1033)
            main_ch = np.concatenate([np.linspace(0.4, pin, k), np.linspace(pin, L - 0.4, n - k + 1)[1:]])
        else:
            main_ch = np.linspace(0.4, L - 0.4, n)
        rows = [(str(i + 1), "main", float(c)) for i, c in enumerate(main_ch)]
        slots = Counter(rng.randrange(1, n) for _ in range(plan["subs"]))
        for number, count in sorted(slots.items()):
            count = min(count, 3)
            a, z = main_ch[number - 1], main_ch[number]
            rows += [(f"{number}/{j}", "sub", float(a + (z - a) * j / (count + 1)))
                     for j in range(1, count + 1)]
        paired = set(rng.sample([i for i in range(2, n) if i not in slots and
                                 abs(i - int(MARKER_1033)) > 5], plan["paired"]))
        rows = [(num, "paired" if num.isdigit() and int(num) in paired else kind, ch)
                for num, kind, ch in rows]
        gap = (L - 0.8) / n
        rows += [(f"{i}A", "paired", float(main_ch[i - 1] + 0.15 * gap)) for i in sorted(paired)]
        rows.sort(key=lambda r: r[2])
        lon, lat, _ = b.at([r[2] for r in rows])
        for (number, kind, ch), x, y in zip(rows, lon, lat):
            markers.append({
                "segment": code, "number": number, "kind": kind,
                "lon": round(float(x), 7), "lat": round(float(y), 7),
                "chainage_km": round(ch, 3), "province": b.province_at(ch),
                "district": None, "commune": None, "post": None,
                "access": rng.choices(["none", "footpath", "earth"], [25, 45, 30])[0],
                "terrain_difficulty": rng.choices([1, 2, 3, 4, 5], [8, 20, 32, 26, 14])[0],
                "requested_by_post": rng.random() < 0.05,
                "last_inspected_on": (
                    _between(rng, date(2025, 6, 1), REFERENCE_DATE - timedelta(days=3)).isoformat()
                    if rng.random() < 0.75 else None),
                "notes": MARKER_NOTE if kind != "paired" else
                MARKER_NOTE + " Mốc đôi (one of a pair, e.g. on two river banks).",
            })
    return markers


def gen_posts(rng: random.Random, geo: Geo) -> list[dict]:
    """One post every 15–30 km of line, 2–8 km inland; the two real posts take the place
    of the generated post nearest to them."""
    posts, counters = [], Counter()
    real = {"VN-CN": (BINH_NGHI, geo.borders["VN-CN"].chainage_of(*DAO_VIEN)),
            "VN-LA": (LAO_BAO_POST, geo.borders["VN-LA"].chainage_of(*LAO_BAO))}
    for code, b in geo.borders.items():
        chain, c = [], rng.uniform(4, 15)
        while c < b.length_km - 4:
            chain.append(c)
            c += rng.uniform(15, 30)
        special = {}
        if code in real:
            info, at = real[code]
            i = min(range(len(chain)), key=lambda j: abs(chain[j] - at))
            chain[i] = at
            special[i] = info
        for i, ch in enumerate(chain):
            info = special.get(i)
            km = info["inland_km"] if info else rng.uniform(2, 8)
            for shift in range(0, 10):
                xy = geo.offset(b, ch + shift, "VNM", km, min_km=1.5 if not info else 0.5)
                if xy:
                    break
            else:
                raise RuntimeError(f"no inland point for a post near km {ch:.1f} of {code}")
            ch += shift
            province = b.province_at(ch)
            if info:
                row = {k: info[k] for k in ("code", "name", "province", "district", "commune", "notes")}
            else:
                counters[province] += 1
                n = counters[province]
                row = {"code": f"BP-{PROVINCE_ABBR[province]}-{n:02d}",
                       "name": f"Đồn Biên phòng {province} {n:02d}", "province": province,
                       "district": None, "commune": None,
                       "notes": GENERATED_NOTE + " Tên và vị trí đồn là minh họa."}
            posts.append({**row, "segment": code, "lon": xy[0], "lat": xy[1],
                          "chainage_km": ch})
    return posts


def nearest_post(posts_by_seg: dict[str, tuple[list[str], np.ndarray]], segment: str,
                 lon: float, lat: float) -> str:
    codes, xy = posts_by_seg[segment]
    d = np.hypot(*(xy - _utm((lon, lat))[:, None]))
    return codes[int(np.argmin(d))]


def index_posts(posts: list[dict]) -> dict[str, tuple[list[str], np.ndarray]]:
    out = {}
    for seg in dict.fromkeys(p["segment"] for p in posts):
        mine = [p for p in posts if p["segment"] == seg]
        out[seg] = ([p["code"] for p in mine],
                    np.array(TO_UTM.transform([p["lon"] for p in mine], [p["lat"] for p in mine])))
    return out


# ---------------------------------------------------------------------------------------
# Donors and campaigns
# ---------------------------------------------------------------------------------------

GEN_AGENCIES = [
    ("Cao Bằng", "Sở Giao thông Vận tải"), ("Cao Bằng", "Sở Xây dựng"),
    ("Cao Bằng", "Sở Công Thương"), ("Cao Bằng", "Sở Nông nghiệp và Phát triển nông thôn"),
    ("Quảng Trị", "Sở Y tế"), ("Quảng Trị", "Sở Giáo dục và Đào tạo"),
    ("Quảng Trị", "Sở Văn hóa, Thể thao và Du lịch"), ("Quảng Trị", "Sở Lao động - Thương binh và Xã hội"),
    ("Hà Giang", "Sở Tài nguyên và Môi trường"), ("Lào Cai", "Sở Thông tin và Truyền thông"),
    ("Nghệ An", "Ban Dân tộc"), ("Tây Ninh", "Sở Khoa học và Công nghệ"),
]
GEN_COMPANIES = [
    "Công ty TNHH Xây dựng Hưng Phát Biên Cương", "Công ty CP Đầu tư Xây dựng Bắc Sơn Xanh",
    "Công ty TNHH Vật liệu Xây dựng Đông Khê", "Công ty CP Thương mại Cửa Khẩu Việt",
    "Công ty TNHH Vận tải Trường Sơn Mới", "Công ty CP Xi măng Núi Đá Vàng",
    "Công ty TNHH Nông sản Miền Biên", "Công ty CP Năng lượng Sông Mã",
    "Công ty TNHH Cao su Phước Biên", "Công ty CP Thủy sản Hà Tiên Xanh",
]
GEN_ORGS = [
    ("Hà Giang", "Hội Doanh nhân trẻ tỉnh Hà Giang"), (None, "Câu lạc bộ Thiện nguyện Vì biên cương"),
    ("Quảng Trị", "Hội Cựu chiến binh huyện mẫu Hướng Hóa"), (None, "Quỹ Cộng đồng Đường lên cột mốc"),
    ("Tây Ninh", "Hội Doanh nghiệp vùng biên Tây Ninh"),
]
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Nông", "Lường", "Hà"]
MIDDLES = ["Văn", "Thị", "Đức", "Minh", "Thanh", "Quốc", "Hữu", "Ngọc"]
GIVENS = ["An", "Bình", "Cường", "Dũng", "Hà", "Hùng", "Lan", "Linh", "Mai", "Nam", "Phúc", "Quân", "Sơn", "Thảo"]


def gen_donors(rng: random.Random) -> tuple[list[dict], list[dict], list[dict]]:
    donors = [{**CLUSTER}]
    members = []
    for code, name, name_en, role, _ in CLUSTER_MEMBERS:
        donors.append({"code": code, "name": name, "name_en": name_en, "kind": "agency",
                       "is_group": False, "province": "Lạng Sơn",
                       "notes": "Tên thật (real member of the cluster, source: Lạng Sơn article)."})
        members.append({"group": CLUSTER["code"], "member": code, "role": role})
    for i, (province, name) in enumerate(GEN_AGENCIES, 1):
        donors.append({"code": f"D-AG-{i:03d}", "name": f"{name} tỉnh {province}", "name_en": None,
                       "kind": "agency", "is_group": False, "province": province,
                       "notes": GENERATED_NOTE})
    clusters = [("CTD-KT-CB", "Cụm thi đua các sở, ngành khối kinh tế tỉnh Cao Bằng", "Cao Bằng"),
                ("CTD-VHXH-QT", "Khối thi đua các cơ quan văn hóa - xã hội tỉnh Quảng Trị", "Quảng Trị")]
    for code, name, province in clusters:
        donors.append({"code": code, "name": name, "name_en": None, "kind": "cluster",
                       "is_group": True, "province": province, "notes": GENERATED_NOTE})
        mine = [d for d in donors if d["kind"] == "agency" and d["province"] == province
                and d["code"].startswith("D-AG-")]
        for j, d in enumerate(mine):
            members.append({"group": code, "member": d["code"],
                            "role": "Cụm trưởng" if j == 0 else ("Cụm phó" if j == 1 else None)})
    for i, name in enumerate(GEN_COMPANIES, 1):
        donors.append({"code": f"D-CO-{i:03d}", "name": name, "name_en": None, "kind": "company",
                       "is_group": False, "province": None, "notes": GENERATED_NOTE})
    for i in range(1, 13):
        name = f"{rng.choice(SURNAMES)} {rng.choice(MIDDLES)} {rng.choice(GIVENS)}"
        donors.append({"code": f"D-PE-{i:03d}", "name": name, "name_en": None, "kind": "person",
                       "is_group": False, "province": None, "notes": GENERATED_NOTE})
    for i, (province, name) in enumerate(GEN_ORGS, 1):
        donors.append({"code": f"D-OR-{i:03d}", "name": name, "name_en": None,
                       "kind": "organisation", "is_group": False, "province": province,
                       "notes": GENERATED_NOTE})
    campaigns = [{**CAMPAIGN_39}]
    for code, name, organiser, province, start, end, target in [
        ("CD-CB-2023", "Phong trào 'Chung tay bê tông hóa đường lên cột mốc' tỉnh Cao Bằng năm 2023",
         "CTD-KT-CB", "Cao Bằng", "2023-03-01", "2023-12-31", 5_000_000_000),
        ("CD-QT-2024", "Đợt vận động 'Đường nhánh vì biên giới hữu nghị' tỉnh Quảng Trị năm 2024",
         "CTD-VHXH-QT", "Quảng Trị", "2024-02-15", "2024-11-30", 3_000_000_000),
        ("CD-HG-2025", "Chương trình 'Doanh nhân trẻ với cột mốc' tỉnh Hà Giang năm 2025",
         "D-OR-001", "Hà Giang", "2025-01-10", "2025-12-31", 2_500_000_000),
        ("CD-VBC-2026", "Chương trình 'Đường lên cột mốc' năm 2026 (toàn tuyến)",
         "D-OR-004", None, "2026-01-01", "2026-12-31", 10_000_000_000),
    ]:
        campaigns.append({"code": code, "name": name, "organiser": organiser, "province": province,
                          "plan_date": (date.fromisoformat(start) - timedelta(days=20)).isoformat(),
                          "starts_on": start, "ends_on": end, "target_amount": target,
                          "notes": GENERATED_NOTE})
    return donors, members, campaigns


# ---------------------------------------------------------------------------------------
# Roads, their history, money and ceremonies
# ---------------------------------------------------------------------------------------

FORWARD = list(ROAD_PATH)
STEP_DAYS = {"surveyed": (20, 120), "funded": (30, 240), "under_construction": (15, 90),
             "completed": (60, 300), "inaugurated": (5, 60), "suspended": (15, 200),
             "cancelled": (20, 300), "resume": (30, 240)}
END_WINDOW = {"proposed": (3, 300), "surveyed": (5, 400), "funded": (5, 400),
              "under_construction": (3, 250), "completed": (10, 500),
              "suspended": (10, 500), "cancelled": (30, 1200)}
SUSPEND_REASONS = ["Tạm dừng do mưa lũ, sạt lở đất", "Tạm dừng chờ bổ sung kinh phí",
                   "Tạm dừng để điều chỉnh hướng tuyến", "Tạm dừng theo đề nghị của địa phương"]
CANCEL_REASONS = ["Hủy do trùng với dự án đường tuần tra biên giới",
                  "Hủy do mốc đã có đường tiếp cận từ hướng khác",
                  "Hủy do địa hình không cho phép thi công"]
CONTRACTORS = ["Công ty TNHH Xây dựng Hưng Phát Biên Cương", "Công ty CP Đầu tư Xây dựng Bắc Sơn Xanh",
               "Hợp tác xã Xây dựng Bản Mới", "Đồn Biên phòng phối hợp nhân dân địa phương tự thi công",
               "Công ty TNHH Xây dựng Giao thông Miền Núi"]


def status_path(rng: random.Random, status: str) -> list[str]:
    """The statuses a road went through to reach ``status`` (first is 'proposed')."""
    if status in FORWARD:
        path = FORWARD[: FORWARD.index(status) + 1]
        if status in ("completed", "inaugurated") and rng.random() < 0.12:
            i = path.index("under_construction") + 1
            path[i:i] = ["suspended", "under_construction"]
        return path
    if status == "suspended":
        last = rng.choices(FORWARD[:4], [1, 3, 3, 5])[0]
        return FORWARD[: FORWARD.index(last) + 1] + ["suspended"]
    last = rng.choices(["proposed", "surveyed", "suspended"], [4, 4, 2])[0]
    if last == "suspended":
        return ["proposed", "surveyed", "suspended", "cancelled"]
    return FORWARD[: FORWARD.index(last) + 1] + ["cancelled"]


def path_dates(rng: random.Random, path: list[str], end: date) -> list[date]:
    """Dates of each step, counted back from ``end`` (the last step's date)."""
    dates = [end]
    for prev, step in zip(reversed(path[:-1]), reversed(path[1:])):
        key = "resume" if prev == "suspended" else step
        dates.insert(0, dates[0] - _days(rng, *STEP_DAYS[key]))
    return dates


def road_shape(rng: random.Random, start: np.ndarray, target: np.ndarray) -> list[np.ndarray]:
    """Inner vertices of a gently winding road from ``start`` to ``target`` (UTM metres)."""
    v = target - start
    dist = float(np.hypot(*v))
    normal = np.array([-v[1], v[0]]) / dist
    n = max(1, min(7, int(dist // 400)))
    amp = rng.uniform(-0.1, 0.1) * dist
    pts = []
    for k in range(1, n + 1):
        t = (k + rng.uniform(-0.25, 0.25)) / (n + 1)
        pts.append(start + v * t + normal * (amp * math.sin(math.pi * t) + rng.gauss(0, 0.015 * dist)))
    return pts


def gen_roads(rng: random.Random, geo: Geo, markers: list[dict], posts: list[dict],
              donors: list[dict], campaigns: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    post_by_code = {p["code"]: p for p in posts}
    by_key = {(m["segment"], m["number"]): m for m in markers}
    taken: set[tuple[str, str]] = set()
    counters: Counter = Counter()
    # Generated roads are funded by generated donors; the real cluster funds Đào Viên only.
    pool = [d for d in donors if d["code"] != CLUSTER["code"] and not d["code"].startswith("LS-")]

    # -- the four real roads of Đào Viên (code DN-LS-0001..0004)
    for number, estimate, inland_km in DAO_VIEN_ROADS:
        m = by_key[("VN-CN", number)]
        taken.add(("VN-CN", number))
        counters["Lạng Sơn"] += 1
        road = _road_row(rng, geo, [m], post_by_code[BINH_NGHI["code"]], inland_km,
                         code=f"DN-LS-{counters['Lạng Sơn']:04d}")
        assert road is not None, f"no road geometry to marker {number}"
        road.update(real=True, status="inaugurated", district="Tràng Định", commune="Đào Viên",
                    estimated_cost=estimate, contractor=None, progress_pct=100,
                    planned_start="2022-09-01", planned_end="2022-11-10",
                    notes=("Trường hợp thật: một trong 04 đường nhánh khánh thành tại xã Đào Viên "
                           "ngày 16/11/2022, kinh phí do các cơ quan Cụm thi đua các cơ quan tham mưu "
                           "tổng hợp ủng hộ theo Kế hoạch 39/KH-CTĐ (real case). Hình học, kinh phí "
                           "và các ngày khác là sinh tự động (geometry, money and other dates generated)."))
        m.update(district="Tràng Định", commune="Đào Viên",
                 notes=MARKER_NOTE + " Huyện/xã giả định: gần mốc 1033 (district/commune assumed).")
        _dao_vien_history(geo, road, out)
        out["road"].append(road)
    by_key[("VN-CN", MARKER_1033)]["notes"] = (
        "Mốc thật: Đồn Biên phòng Bình Nghi đề nghị hỗ trợ làm đường nhánh kiểm tra mốc tại khu "
        "vực mốc 1033 (real marker number, Lạng Sơn article of 16/11/2022). " + MARKER_NOTE)
    by_key[("VN-CN", MARKER_1033)]["requested_by_post"] = True

    # -- generated roads: statuses shuffled over the lines, markers drawn until a road fits
    statuses = [s for s, k in STATUS_COUNTS.items() for _ in range(k)]
    rng.shuffle(statuses)
    lines = [code for code, n in ROADS_PER_LINE.items() for _ in range(n)]
    candidates = {}
    for code in ROADS_PER_LINE:
        cand = [m for m in markers if m["segment"] == code and m["kind"] != "paired"
                and not (code == "VN-CN" and 1025 <= _main_no(m) <= 1040)]  # Đào Viên stays real
        candidates[code] = rng.sample(cand, len(cand))
    following = {(a["segment"], a["number"]): b for a, b in zip(markers, markers[1:])}
    generated = []
    for code, status in zip(lines, statuses):
        road = None
        while road is None:
            m = candidates[code].pop()
            if (code, m["number"]) in taken:
                continue
            served = [m]
            nxt = following.get((code, m["number"]))
            if (nxt and rng.random() < 0.25 and nxt["segment"] == code and nxt["post"] == m["post"]
                    and nxt["province"] == m["province"] and (code, nxt["number"]) not in taken
                    and nxt["chainage_km"] - m["chainage_km"] < 2.0):
                served.append(nxt)
            road = _road_row(rng, geo, served, post_by_code[m["post"]], rng.uniform(1.0, 3.2), code="")
        taken |= {(code, x["number"]) for x in served}
        road["status"] = status
        generated.append(road)
    # codes follow the lines' chainage within each province, after the real DN-LS-0001..0004
    order = {code: i for i, code in enumerate(ROADS_PER_LINE)}
    first_km = {(m["segment"], m["number"]): m["chainage_km"] for m in markers}
    generated.sort(key=lambda r: (order[r["segment"]], first_km[(r["segment"], r["markers"][0])]))
    for road in generated:
        counters[road["province"]] += 1
        road["code"] = f"DN-{PROVINCE_ABBR[road['province']]}-{counters[road['province']]:04d}"
    out["road"] += generated

    # -- ceremonies for generated inaugurated roads: consecutive roads of a province, 1-4 each
    gen_inaug = [r for r in out["road"] if r["status"] == "inaugurated" and not r["real"]]
    groups, i = [], 0
    gen_inaug.sort(key=lambda r: (r["province"], r["code"]))
    while i < len(gen_inaug):
        size = rng.choice([1, 2, 2, 3, 3, 4])
        group = [r for r in gen_inaug[i:i + size] if r["province"] == gen_inaug[i]["province"]]
        groups.append(group)
        i += len(group)
    held = set()
    for group in groups:
        day = REFERENCE_DATE - _days(rng, 20, 1300)
        first = group[0]
        post = post_by_code[first["post"]]
        place = f"Khu vực {post['name']}, tỉnh {first['province']}"
        while (day, place) in held:
            day -= timedelta(days=1)
        held.add((day, place))
        title = f"Lễ khánh thành {len(group):02d} đường nhánh lên cột mốc, {post['name']}"
        for r in group:
            r["inaugurated_on"] = day
            r["ceremony"] = (title, day.isoformat(), place)
        out["inauguration"].append({
            "title": title, "held_on": day.isoformat(), "place": place, "commune": None,
            "district": None, "province": first["province"], "geom": first["start"],
            "officials": (f"Lãnh đạo Bộ Chỉ huy BĐBP tỉnh {first['province']}; đại diện các nhà "
                          f"tài trợ; {post['name']}"),
            "notes": GENERATED_NOTE,
        })

    # -- history, money, dates for generated roads
    for road in out["road"]:
        if road["real"]:
            continue
        _generated_history(rng, geo, road, post_by_code[road["post"]], out)
        _funding(rng, road, pool, campaigns, out)

    # -- the Đào Viên ceremony and its money
    _dao_vien_money_and_ceremony(out)
    for road in out["road"]:
        for number in road["markers"]:
            out["road_marker"].append({"road": road["code"], "segment": road["segment"], "number": number})
    return out


def _main_no(m: dict) -> int:
    return int(m["number"].split("/")[0].rstrip("AB"))


def _road_row(rng: random.Random, geo: Geo, served: list[dict], post: dict, inland_km: float,
              code: str) -> dict | None:
    """Geometry and static fields of one road. It starts ``inland_km`` from its first marker,
    heading for the post (or inland if that leaves Viet Nam), winds to a point 100–200 m
    straight inland of the marker, ends 8–20 m from it, and for a second marker follows the
    line 15 m inside. It never crosses a border line."""
    border = geo.borders[served[0]["segment"]]
    served = sorted(served, key=lambda m: m["chainage_km"])
    m0 = served[0] if len(served) == 1 or rng.random() < 0.5 else served[-1]
    az, _, dist = GEOD.inv(m0["lon"], m0["lat"], post["lon"], post["lat"])
    inland_az = float(border.at(m0["chainage_km"])[2][0]) - 90 * border.vn_side
    tries = [(az, min(inland_km * 1000, max(dist - 150, 300)))]
    tries += [(heading + t, inland_km * 1000 * s) for heading in (az, inland_az)
              for s in (1, 0.7, 0.5) for t in (0, 30, -30, 60, -60)]
    approach, at = border.approach(m0["chainage_km"]), _utm((m0["lon"], m0["lat"]))
    tail = [at + approach * rng.uniform(100, 200), at + approach * rng.uniform(8, 20)]
    if len(served) > 1:
        along = border.inside_path(served[0]["chainage_km"], served[-1]["chainage_km"], 15.0)
        tail = [tail[0]] + (along if m0 is served[0] else along[::-1])
    for heading, meters in tries:
        x, y, _ = GEOD.fwd(m0["lon"], m0["lat"], heading, meters)
        if not geo.on_side("VNM", x, y) or geo.km_to_border(x, y) < 0.3:
            continue
        start = _utm((x, y))
        for _ in range(4):
            coords = np.array([start, *road_shape(rng, start, tail[0]), *tail])
            line = LineString(coords)
            if line.is_simple and not geo.all_lines_utm.intersects(line):
                break
        else:
            continue
        line = _lonlat_line(coords)
        if not (line.is_simple and line.is_valid):
            continue
        length_km = float(GEOD.geometry_length(line)) / 1000
        cost = min(3_000_000_000, max(800_000_000, 600e6 + length_km * rng.uniform(250e6, 600e6)))
        return {
            "code": code, "name": "Đường nhánh lên mốc " + " và ".join(m["number"] for m in served),
            "segment": border.code, "markers": [m["number"] for m in served], "post": post["code"],
            "province": served[0]["province"], "district": None, "commune": None,
            "geom": line, "start": (round(x, 7), round(y, 7)), "utm": coords,
            "width_m": rng.choice([2.5, 3.0, 3.0, 3.5]), "estimated_cost": _million(cost),
            "real": False, "notes": GENERATED_NOTE,
        }
    return None


def _as_built(rng: random.Random, geo: Geo, coords: np.ndarray) -> LineString:
    """The as-built line: the planned one with inner vertices moved a few metres (or the
    planned one itself when the moved one would cross itself or the border)."""
    for _ in range(3):
        moved = coords.copy()
        moved[1:-1] += np.array([rng.gauss(0, 5) for _ in range(2 * (len(coords) - 2))]).reshape(-1, 2)
        if LineString(moved).is_simple and not geo.all_lines_utm.intersects(LineString(moved)):
            line = _lonlat_line(moved)
            if line.is_simple and line.is_valid:
                return line
    return _lonlat_line(coords)


def _event(road: dict, frm: str | None, to: str, day: date, hour: int, actor: str,
           note: str, progress: int | None = None, evidence: dict | None = None,
           geom: str | None = None) -> dict:
    at = f"{day.isoformat()}T{hour:02d}:00:00+07:00"
    return {"road": road["code"], "from_status": frm, "to_status": to, "occurred_at": at,
            "recorded_at": at, "actor": actor, "note": note, "progress_pct": progress,
            "evidence": evidence or {}, "geom": geom}


def _generated_history(rng: random.Random, geo: Geo, road: dict, post: dict, out: dict) -> None:
    """Events along the road's status path, dated backwards from its last step, and the
    road's dates, progress, contractor and as-built line that follow from them."""
    status = road["status"]
    path = status_path(rng, status)
    if status == "inaugurated":
        end = road["inaugurated_on"]
    else:
        end = REFERENCE_DATE - _days(rng, *END_WINDOW[status])
    dates = path_dates(rng, path, end)
    road["path"], road["dates"] = path, dates
    province, numbers = road["province"], " và ".join(road["markers"])
    bchq = f"Bộ Chỉ huy BĐBP tỉnh {province}"
    stage = [s for s in path if s not in ("suspended", "cancelled")][-1]
    if stage == "under_construction":
        progress = rng.randint(5, 95)
    else:
        progress = 100 if stage in ("completed", "inaugurated") else 0
    contractor = rng.choice(CONTRACTORS) if "under_construction" in path else None
    mid = road["geom"].interpolate(0.5, normalized=True)
    prev = None
    for step, day in zip(path, dates):
        hour = rng.randint(8, 16)
        if step == "proposed":
            e = _event(road, None, step, day, hour, post["name"],
                       f"Đề nghị làm đường nhánh bê tông lên mốc {numbers}",
                       geom=ewkt((post["lon"], post["lat"])))
        elif step == "surveyed":
            e = _event(road, prev, step, day, hour, f"Sở Ngoại vụ tỉnh {province} phối hợp {post['name']}",
                       "Khảo sát thực địa, lập hướng tuyến và dự toán",
                       evidence={"document": "Biên bản khảo sát hiện trường"}, geom=ewkt(mid))
        elif step == "funded":
            e = _event(road, prev, step, day, hour, bchq, "Đủ cam kết tài trợ so với dự toán")
        elif step == "under_construction":
            note = "Tiếp tục thi công" if prev == "suspended" else "Khởi công"
            e = _event(road, prev, step, day, hour, contractor or post["name"], note,
                       progress=0 if prev != "suspended" else None)
        elif step == "completed":
            e = _event(road, prev, step, day, hour, post["name"], "Hoàn thành, nghiệm thu đưa vào sử dụng",
                       progress=100, evidence={"photos": rng.randint(2, 8)}, geom=ewkt(mid))
        elif step == "inaugurated":
            e = _event(road, prev, step, day, hour, "Ban tổ chức lễ khánh thành", road["ceremony"][0])
        elif step == "suspended":
            e = _event(road, prev, step, day, hour, bchq, rng.choice(SUSPEND_REASONS))
        else:
            e = _event(road, prev, step, day, hour, bchq, rng.choice(CANCEL_REASONS))
        out["road_event"].append(e)
        prev = step
    when = dict(zip(path, dates))  # the last visit of each status
    first = {s: d for s, d in reversed(list(zip(path, dates)))}
    road["progress_pct"] = progress
    road["contractor"] = contractor
    if "funded" in when:
        start = when["funded"] + _days(rng, 20, 60)
        road["planned_start"] = start.isoformat()
        road["planned_end"] = (start + _days(rng, 120, 300)).isoformat()
    if "under_construction" in first:
        road["actual_start"] = first["under_construction"].isoformat()
    if "completed" in when:
        road["completed_on"] = when["completed"].isoformat()
        road["as_built"] = _as_built(rng, geo, road["utm"])
    road["stage"], road["first"], road["when"] = stage, first, when


def _split(rng: random.Random, total: int, k: int) -> list[int]:
    """``total`` (whole millions) in ``k`` positive whole-million parts."""
    units = total // 1_000_000
    cuts = sorted(rng.sample(range(1, units), k - 1)) if k > 1 else []
    return [(b - a) * 1_000_000 for a, b in zip([0] + cuts, cuts + [units])]


def _campaign_for(rng: random.Random, campaigns: list[dict], province: str, day: date) -> str | None:
    for c in campaigns[1:]:
        if c["province"] in (province, None) and c["starts_on"] <= day.isoformat() <= c["ends_on"]:
            return c["code"] if rng.random() < 0.7 else None
    return None


def _funding(rng: random.Random, road: dict, pool: list[dict], campaigns: list[dict], out: dict) -> None:
    """Ledger rows consistent with the road's stage: pledges only before 'funded';
    commitments ≥ estimate from 'funded' on; disbursed ≤ committed; spent ≤ disbursed;
    a finished road's actual cost is what was spent."""
    stage, first, when, est = road["stage"], road["first"], road["when"], road["estimated_cost"]
    local = [d for d in pool if d["province"] == road["province"]]
    candidates = local * 3 + pool
    k = rng.choice([1, 2, 2, 3])
    chosen = []
    while len(chosen) < k:
        d = rng.choice(candidates)
        if d["code"] not in [c["code"] for c in chosen]:
            chosen.append(d)
    rows = []

    def tx(donor: dict, kind: str, amount: int, day: date, n: int, ref: str | None) -> None:
        rows.append({"donor": donor["code"], "road": road["code"], "kind": kind, "amount": amount,
                     "tx_date": day.isoformat(), "reference": ref,
                     "campaign": _campaign_for(rng, campaigns, road["province"], day),
                     "note": GENERATED_NOTE,
                     "idempotency_key": f"demo:{road['code']}:{kind}:{donor['code']}:{n}"})

    last_day = road["dates"][-1]
    if stage in ("proposed", "surveyed"):
        if rng.random() < (0.3 if stage == "proposed" else 0.55):
            parts = _split(rng, _million(est * rng.uniform(0.15, 0.6)), min(k, 2))
            for d, amount in zip(chosen, parts):
                tx(d, "pledge", amount, _between(rng, first["proposed"], last_day), 1, None)
        out["funding_tx"] += rows
        return
    committed = _million(est * rng.uniform(1.0, 1.08)) + 1_000_000
    commits = _split(rng, committed, k)
    commit_from = first.get("surveyed", first["proposed"])
    for d, amount in zip(chosen, commits):
        if rng.random() < 0.5:
            tx(d, "pledge", amount, _between(rng, first["proposed"], commit_from), 1, None)
        tx(d, "commitment", amount, _between(rng, commit_from, first["funded"]), 1,
           f"Văn bản cam kết số {rng.randint(10, 999)}/CV")
    if stage == "funded":
        ratio_d, ratio_x = (rng.uniform(0.1, 0.4) if rng.random() < 0.4 else 0.0), 0.0
    elif stage == "under_construction":
        p = road["progress_pct"] / 100
        ratio_d = rng.uniform(max(0.3, p), min(1.0, p + 0.3))
        ratio_x = p * rng.uniform(0.8, 1.0) * est / committed
    else:
        ratio_d = rng.uniform(0.96, 1.0)
        ratio_x = rng.uniform(0.9, 0.99) * est / committed
    ratio_x = min(ratio_x, ratio_d)
    # Money moves until today while the road is still active, until the suspension or
    # cancellation otherwise, and until a month after completion for finished roads.
    if stage in ("completed", "inaugurated"):
        until = min(REFERENCE_DATE, when["completed"] + timedelta(days=30))
    elif road["status"] == stage:
        until = REFERENCE_DATE - timedelta(days=1)
    else:
        until = last_day
    spent_total = 0
    for d, amount in zip(chosen, commits):
        disbursed = _million(amount * ratio_d)
        if disbursed <= 0:
            continue
        tranches = _split(rng, disbursed, 2) if disbursed >= 2_000_000 and rng.random() < 0.4 else [disbursed]
        day = first["funded"]
        for n, part in enumerate(tranches, 1):
            day = _between(rng, day, min(until, day + timedelta(days=120)))
            tx(d, "disbursement", part, day, n, f"Ủy nhiệm chi số {rng.randint(100, 9999)}")
        spent = _million(disbursed * ratio_x / ratio_d) if ratio_d else 0
        if spent > 0:
            spend_from = max(day, first.get("under_construction", day))
            tx(d, "expenditure", spent, _between(rng, spend_from, max(spend_from, until)), 1,
               "Thanh toán khối lượng hoàn thành")
            spent_total += spent
    if stage in ("completed", "inaugurated"):
        road["actual_cost"] = spent_total
    out["funding_tx"] += rows


def _dao_vien_history(geo: Geo, road: dict, out: dict) -> None:
    """Request by Bình Nghi, survey by Sở Ngoại vụ with the district and posts, funding by
    the cluster, construction, completion before and inauguration on 16/11/2022. Only the
    plan date and the ceremony date are real; the others are plausible and generated."""
    i = int(road["code"][-1])
    steps = [
        (None, "proposed", date(2022, 3, 10), BINH_NGHI["name"],
         "Đề nghị hỗ trợ kinh phí làm đường nhánh kiểm tra mốc biên giới tại khu vực mốc 1033", None, {}),
        ("proposed", "surveyed", date(2022, 6, 20), "Sở Ngoại vụ tỉnh Lạng Sơn phối hợp UBND huyện "
         "Tràng Định và Đồn Biên phòng Bình Nghi", "Khảo sát thực địa tuyến đường chưa được kiên cố "
         "bê tông hóa lên mốc biên giới, đề xuất hoạt động chung của Cụm 6 tháng cuối năm",
         None, {"document": "Biên bản khảo sát"}),
        ("surveyed", "funded", date(2022, 8, 25), CLUSTER["name"],
         "Các cơ quan trong Cụm cam kết ủng hộ kinh phí theo Kế hoạch 39/KH-CTĐ", None, {}),
        ("funded", "under_construction", date(2022, 9, 5 + i), BINH_NGHI["name"], "Khởi công", 0, {}),
        ("under_construction", "completed", date(2022, 11, 2 + i), BINH_NGHI["name"],
         "Hoàn thành bê tông hóa, nghiệm thu", 100, {"photos": 3}),
        ("completed", "inaugurated", INAUGURATION_DAY, "Cụm thi đua các cơ quan tham mưu tổng hợp; "
         "Bộ Chỉ huy BĐBP tỉnh Lạng Sơn; UBND huyện Tràng Định",
         "Lễ khánh thành 04 đường nhánh tại xã Đào Viên, huyện Tràng Định", None, {}),
    ]
    for frm, to, day, actor, note, progress, evidence in steps:
        out["road_event"].append(_event(road, frm, to, day, 9, actor, note, progress, evidence))
    road.update(actual_start=date(2022, 9, 5 + i).isoformat(),
                completed_on=date(2022, 11, 2 + i).isoformat(),
                ceremony=(DAO_VIEN_TITLE, INAUGURATION_DAY.isoformat(), "Xã Đào Viên, huyện Tràng Định"),
                as_built=_as_built(random.Random(f"{SEED}:as-built:{road['code']}"), geo, road["utm"]))


def _dao_vien_money_and_ceremony(out: dict) -> None:
    """Each member agency pledges, commits (together = the estimate), hands over at the
    ceremony and the post accounts for what was spent. Amounts are generated."""
    real = [r for r in out["road"] if r["real"]]
    weights = [w for *_, w in CLUSTER_MEMBERS]
    for road in real:
        est = road["estimated_cost"]
        shares = [_million(est * w / sum(weights)) for w in weights]
        shares[2] += est - sum(shares)  # the cluster head rounds up to the estimate
        spent_total = 0
        for (code, *_), share in zip(CLUSTER_MEMBERS, shares):
            spent = _million(share * 0.97)
            spent_total += spent
            for kind, day, amount, ref in [
                ("pledge", date(2022, 7, 15), share, "Thông báo vận động của Sở Ngoại vụ"),
                ("commitment", date(2022, 8, 20), share, "Theo Kế hoạch 39/KH-CTĐ"),
                ("disbursement", INAUGURATION_DAY, share, "Trao biểu trưng tại Lễ khánh thành 16/11/2022"),
                ("expenditure", date(2022, 11, 30), spent, "Quyết toán công trình"),
            ]:
                out["funding_tx"].append({
                    "donor": code, "road": road["code"], "campaign": CAMPAIGN_39["code"], "kind": kind,
                    "amount": amount, "tx_date": day.isoformat(), "reference": ref,
                    "note": "Số tiền sinh tự động (the source gives no amounts).",
                    "idempotency_key": f"demo:{road['code']}:{kind}:{code}:1"})
        road["actual_cost"] = spent_total
    out["inauguration"].insert(0, {
        "title": DAO_VIEN_TITLE, "held_on": INAUGURATION_DAY.isoformat(),
        "place": "Xã Đào Viên, huyện Tràng Định", "commune": "Đào Viên", "district": "Tràng Định",
        "province": "Lạng Sơn", "geom": real[0]["start"], "officials": DAO_VIEN_OFFICIALS,
        "notes": ("Sự kiện thật (real event): cắt băng khánh thành; trao biểu trưng số tiền hỗ trợ "
                  "xây dựng 04 công trình cho Đồn Biên phòng Bình Nghi; tham quan tuyến đường nhánh "
                  "bê tông. Nguồn: tin bài 'Cụm Thi đua các cơ quan tham mưu tổng hợp tham gia ủng hộ "
                  "kinh phí xây dựng các công trình đường nhánh kiểm tra cột mốc quốc giới huyện Tràng "
                  "Định'. Vị trí điểm là sinh tự động."),
    })
    out["inauguration_donor"].append({"ceremony": real[0]["ceremony"], "donor": CLUSTER["code"]})
    out["inauguration_donor"] += [{"ceremony": real[0]["ceremony"], "donor": code}
                                  for code, *_ in CLUSTER_MEMBERS]
    for road in out["road"]:
        if "ceremony" in road:
            out["inauguration_road"].append({"ceremony": road["ceremony"], "road": road["code"]})
    credited = defaultdict(set)
    for tx in out["funding_tx"]:
        if tx["kind"] == "commitment" and tx["road"]:
            credited[tx["road"]].add(tx["donor"])
    for road in out["road"]:
        if "ceremony" in road and not road["real"]:
            for donor in sorted(credited[road["code"]]):
                row = {"ceremony": road["ceremony"], "donor": donor}
                if row not in out["inauguration_donor"]:
                    out["inauguration_donor"].append(row)


def campaign_pledges(rng: random.Random, campaigns: list[dict], members: list[dict]) -> list[dict]:
    """Pledges made to a generated campaign before any road was chosen for them."""
    rows = []
    for c in campaigns[1:]:
        group = [m["member"] for m in members if m["group"] == c["organiser"]] or [c["organiser"]]
        for n, donor in enumerate(group[:3], 1):
            day = _between(rng, date.fromisoformat(c["starts_on"]),
                           min(date.fromisoformat(c["ends_on"]), REFERENCE_DATE))
            rows.append({"donor": donor, "road": None, "campaign": c["code"], "kind": "pledge",
                         "amount": rng.randint(5, 60) * 10_000_000, "tx_date": day.isoformat(),
                         "reference": "Đăng ký ủng hộ chương trình", "note": GENERATED_NOTE,
                         "idempotency_key": f"demo:{c['code']}:pledge:{donor}:{n}"})
    return rows


# ---------------------------------------------------------------------------------------
# Villages, pairs and meetings
# ---------------------------------------------------------------------------------------

NAME_STYLES = {
    "north": (["Bản", "Thôn", "Xóm"], ["Nà", "Khuổi", "Pác", "Pò", "Bó", "Lũng", "Cốc", "Phja", "Nặm",
                                        "Huổi", "Co", "Tà", "Sán", "Lùng", "Kéo", "Nà Mạ"],
              ["Pàn", "Luông", "Khiếu", "Tẳng", "Sla", "Hán", "Lầu", "Coóc", "Vài", "Chang", "Nưa",
               "Mỏ", "Cáy", "Rạc", "Ngần", "Lếch"]),
    "central": (["Bản", "Thôn", "Làng"], ["A", "Ka", "Pa", "Ta", "Ra", "Tà", "Cù", "Xi"],
                ["Lưới", "Rông", "Xing", "Vênh", "Ho", "Dơi", "Long", "Bê", "Roàng", "Ngo", "Bai", "Lăng"]),
    "highland": (["Buôn", "Bon", "Làng"], ["Ea", "Bu", "Pu", "Kô", "Ya", "Đăk", "Plei"],
                 ["Đrăng", "Prăng", "Jun", "Sar", "Rơ", "Lốp", "Mơ", "Kriêng", "Hleo", "Rang"]),
    "south": (["Ấp", "Khóm"], ["Tân", "Bình", "Phước", "Thạnh", "Long", "Hòa", "An", "Mỹ", "Phú", "Vĩnh"],
              ["Hòa", "Thạnh", "Lợi", "Đông", "Tây", "Trung", "Hiệp", "Khánh", "Bình", "Phước"]),
    "CHN": (["Thôn"], ["Thanh", "Bình", "Long", "Kim", "Vân", "Đông", "Nam", "Hoa"],
            ["Sơn", "Thủy", "Trại", "Khê", "Bản", "Lĩnh", "Pha", "Động"]),
    "LAO": (["Bản"], ["Na", "Phôn", "Xay", "Huội", "Pha", "Đon", "Nọng", "Sốp", "Nam"],
            ["Kham", "Thong", "Sỏm", "Ngam", "Luông", "Vang", "Chăn", "Xay", "Mày"]),
    "KHM": (["Phum"], ["Thmei", "Chrey", "Kandal", "Trapeang", "Prey", "Svay", "Kampong", "Ta"],
            ["Thom", "Veng", "Sre", "Chas", "Krom", "Leu", "Tbong", "Kouk"]),
}
HIGHLAND = {"Kon Tum", "Gia Lai", "Đắk Lắk", "Đắk Nông"}
SOUTH = {"Bình Phước", "Tây Ninh", "Long An", "Đồng Tháp", "An Giang", "Kiên Giang"}
CENTRAL = {"Hà Tĩnh", "Quảng Bình", "Quảng Trị", "Thừa Thiên Huế", "Quảng Nam"}
MEETING_TOPICS = ["sản xuất", "giao lưu văn hóa, văn nghệ, thể thao", "tự quản đường biên, cột mốc",
                  "an ninh trật tự", "phòng chống dịch bệnh", "phòng chống buôn lậu, ma túy",
                  "hôn nhân qua biên giới", "giúp nhau xóa đói giảm nghèo"]


def village_name(rng: random.Random, country: str, province: str) -> str:
    if country != "VNM":
        style = NAME_STYLES[country]
    elif province in HIGHLAND:
        style = NAME_STYLES["highland"]
    elif province in SOUTH:
        style = NAME_STYLES["south"]
    elif province in CENTRAL:
        style = NAME_STYLES["central"]
    else:
        style = NAME_STYLES["north"]
    prefixes, first, second = style
    return f"{rng.choice(prefixes)} {rng.choice(first)} {rng.choice(second)}"


def gen_villages(rng: random.Random, geo: Geo, posts_idx: dict) -> dict[str, list[dict]]:
    """Villages 1–6 km from the line on both sides, pairs facing each other across it, and
    quarterly meetings up to the reference date (a quarter of the pairs are overdue: no
    meeting for Q3-2026, the last full quarter before 2026-11-23)."""
    out: dict[str, list[dict]] = defaultdict(list)
    counters: Counter = Counter()

    def village(b: Border, ch: float, iso3: str, km: float) -> dict | None:
        xy = geo.offset(b, ch, iso3, km, min_km=0.8)
        if xy is None:
            return None
        province = b.province_at(ch)
        counters[iso3] += 1
        pop = rng.randint(120, 1400)
        return {"code": f"V-{iso3}-{counters[iso3]:04d}", "name": village_name(rng, iso3, province),
                "country": iso3, "segment": b.code,
                "admin1": province if iso3 == "VNM" else NEIGHBOUR_ADMIN1[province][iso3],
                "admin2": None, "admin3": None, "population": pop,
                "households": pop // rng.randint(4, 6), "lon": xy[0], "lat": xy[1]}

    # the real pair first
    la = geo.borders["VN-LA"]
    duy_tan = {"code": "V-VNM-QT-DUY-TAN", "name": "Khóm Duy Tân", "country": "VNM", "segment": "VN-LA",
               "admin1": "Quảng Trị", "admin2": "Hướng Hóa", "admin3": "Lao Bảo",
               "population": None, "households": None}
    ban_phuong = {"code": "V-LAO-SVK-BAN-PHUONG", "name": "Bản Phường", "country": "LAO",
                  "segment": "VN-LA", "admin1": "Savannakhet", "admin2": "Sê Pôn", "admin3": None,
                  "population": None, "households": None}
    for v, hint in ((duy_tan, DUY_TAN_HINT), (ban_phuong, BAN_PHUONG_HINT)):
        if geo.on_side(v["country"], *hint):
            v["lon"], v["lat"] = hint
        else:
            v["lon"], v["lat"] = geo.offset(la, la.chainage_of(*hint), v["country"], 1.0, 0.2)
        out["village"].append(v)
    out["village_pair"].append({
        "vn": duy_tan["code"], "foreign": ban_phuong["code"], "post": LAO_BAO_POST["code"],
        "twinned_on": None,
        "notes": ("Cặp bản kết nghĩa thật (real pair, source: Quảng Trị article of 31/07/2023); "
                  "vị trí sinh tự động, ngày kết nghĩa không rõ.")})
    out["pair_meeting"].append({"pair": (duy_tan["code"], ban_phuong["code"]), "attendance": None,
                                **LAO_BAO_MEETING})

    for code, b in geo.borders.items():
        # unpaired villages, each side on its own rhythm
        for iso3 in ("VNM", b.neighbour):
            c = rng.uniform(3, 20)
            while c < b.length_km - 3:
                v = village(b, c, iso3, rng.uniform(1.2, 6))
                if v:
                    out["village"].append(v)
                c += rng.uniform(20, 40)
        # pairs facing each other
        spots = sorted(rng.sample(range(5, int(b.length_km) - 5, 10), PAIRS_PER_LINE[code]))
        for c in spots:
            vn = village(b, c, "VNM", rng.uniform(1.2, 4))
            fo = village(b, c + rng.uniform(-1.5, 1.5), b.neighbour, rng.uniform(1.2, 4))
            if not (vn and fo):
                continue
            out["village"] += [vn, fo]
            twinned = date(rng.randint(2012, 2022), rng.randint(1, 12), rng.randint(1, 28))
            pair = {"vn": vn["code"], "foreign": fo["code"],
                    "post": nearest_post(posts_idx, code, vn["lon"], vn["lat"]),
                    "twinned_on": twinned.isoformat(), "notes": GENERATED_NOTE}
            out["village_pair"].append(pair)
            out["pair_meeting"] += pair_meetings(rng, vn, fo, twinned)
    return out


def pair_meetings(rng: random.Random, vn: dict, fo: dict, twinned: date) -> list[dict]:
    overdue = rng.random() < 0.25
    year, q = max((twinned.year, (twinned.month - 1) // 3 + 1), (2024, 1))
    stop = (2026, rng.choice([1, 2, 2])) if overdue else (2026, 4 if rng.random() < 0.3 else 3)
    rows = []
    while (year, q) <= stop:
        if (year, q) >= (2026, 3) or rng.random() > 0.08:  # a few skipped quarters, never the last
            q_end = (date(year, 3 * q, 1) + timedelta(days=31)).replace(day=1) - timedelta(days=1)
            day = q_end - _days(rng, 0, 60) + _days(rng, 0, 25)
            day = min(day, REFERENCE_DATE - timedelta(days=3))
            host = vn if (year + q) % 2 else fo
            rows.append({
                "pair": (vn["code"], fo["code"]), "held_on": day.isoformat(), "year": year, "quarter": q,
                "place": f"Nhà văn hóa {host['name']}", "attendance": rng.randint(20, 90),
                "topics": sorted(rng.sample(MEETING_TOPICS, rng.randint(2, 4)), key=MEETING_TOPICS.index),
                "agreements": "Thống nhất duy trì giao ban hằng quý, phối hợp tự quản đường biên, cột mốc.",
                "notes": GENERATED_NOTE})
        year, q = (year + 1, 1) if q == 4 else (year, q + 1)
    return rows


# ---------------------------------------------------------------------------------------
# Putting it together
# ---------------------------------------------------------------------------------------


def generate() -> dict[str, list[dict]]:
    """All demo rows, keyed by natural keys; no database needed. Deterministic."""
    borders, countries = read_borders(), read_countries()
    geo = Geo(borders, countries)
    markers = gen_markers(random.Random(f"{SEED}:markers"), borders)
    posts = gen_posts(random.Random(f"{SEED}:posts"), geo)
    posts_idx = index_posts(posts)
    for seg in posts_idx:
        mine = [m for m in markers if m["segment"] == seg]
        codes, pxy = posts_idx[seg]
        mxy = np.array(TO_UTM.transform([m["lon"] for m in mine], [m["lat"] for m in mine]))
        d = np.hypot(mxy[0][:, None] - pxy[0][None, :], mxy[1][:, None] - pxy[1][None, :])
        for m, j in zip(mine, np.argmin(d, axis=1)):
            m["post"] = codes[int(j)]
    donors, members, campaigns = gen_donors(random.Random(f"{SEED}:donors"))
    road_rng = random.Random(f"{SEED}:roads")
    data = gen_roads(road_rng, geo, markers, posts, donors, campaigns)
    data["funding_tx"] += campaign_pledges(road_rng, campaigns, members)
    by_key = {(m["segment"], m["number"]): m for m in markers}
    for road in data["road"]:
        for number in road["markers"]:
            m = by_key[(road["segment"], number)]
            if road["status"] in ("completed", "inaugurated"):
                m["access"] = "concrete"
            m["requested_by_post"] = m["requested_by_post"] or road_rng.random() < 0.85 or road["real"]
    data.update(gen_villages(random.Random(f"{SEED}:villages"), geo, posts_idx))
    data.update(segment=list(borders.values()), marker=markers, post=posts, donor=donors,
                donor_member=members, campaign=campaigns)
    return data


def _insert(conn: Connection, table: str, rows: list[dict], columns: dict[str, str],
            tail: str = "ON CONFLICT DO NOTHING") -> None:
    """One INSERT ... SELECT FROM jsonb_to_recordset for all ``rows`` (a single round trip).
    Columns typed 'geometry' carry EWKT text; 'multigeometry' is wrapped with ST_Multi (the
    VN-LA border is a LineString in the file, the column a MultiLineString)."""
    if not rows:
        return
    geom_sql = {"geometry": "ST_GeomFromEWKT(r.{})", "multigeometry": "ST_Multi(ST_GeomFromEWKT(r.{}))"}
    names = ", ".join(columns)
    exprs = ", ".join(geom_sql.get(t, "r.{}").format(c) for c, t in columns.items())
    defs = ", ".join(f"{c} {'text' if t in geom_sql else t}" for c, t in columns.items())
    payload = json.dumps([{c: row.get(c) for c in columns} for row in rows], ensure_ascii=False)
    conn.execute(text(f"INSERT INTO {table} ({names}) SELECT {exprs} "
                      f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({defs}) {tail}"),
                 {"rows": payload})


def _ids(conn: Connection, sql: str) -> dict:
    return {tuple(r[:-1]) if len(r) > 2 else r[0]: r[-1] for r in conn.execute(text(sql))}


COUNTED = ["border_segment", "marker", "border_post", "branch_road", "road_marker", "road_event",
           "donor", "donor_member", "campaign", "funding_tx", "inauguration", "inauguration_road",
           "inauguration_donor", "village", "village_pair", "pair_meeting"]


def table_counts(conn: Connection) -> dict[str, int]:
    sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in COUNTED)
    return {name: int(n) for name, n in conn.execute(text(sql))}


def load_demo(engine: Engine) -> dict[str, int]:
    """Load the demo dataset into a migrated database, in one transaction; idempotent.

    Returns the number of rows in each demo table after loading."""
    data = generate()
    with engine.begin() as conn:
        # Two concurrent loads would both pass the NOT EXISTS checks below: serialise them.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('geo_api.demo'))"))
        write(conn, data)
        return table_counts(conn)


def write(conn: Connection, d: dict[str, list]) -> None:
    _insert(conn, "border_segment", [
        {"code": b.code, "neighbour_iso3": b.neighbour, "name_vi": b.name_vi, "name_en": b.name_en,
         "geom": "SRID=4326;" + b.wkt} for b in d["segment"]],
        {"code": "text", "neighbour_iso3": "text", "name_vi": "text", "name_en": "text",
         "geom": "multigeometry"}, tail="ON CONFLICT (code) DO NOTHING")
    seg = _ids(conn, "SELECT code, id FROM border_segment")

    _insert(conn, "border_post", [
        {**p, "segment_id": seg[p["segment"]], "geom": ewkt((p["lon"], p["lat"]))} for p in d["post"]],
        {"code": "text", "name": "text", "province": "text", "district": "text", "commune": "text",
         "segment_id": "integer", "geom": "geometry", "notes": "text"},
        tail="ON CONFLICT (code) DO NOTHING")
    post = _ids(conn, "SELECT code, id FROM border_post")

    _insert(conn, "marker", [
        {**m, "segment_id": seg[m["segment"]], "post_id": post[m["post"]],
         "geom": ewkt((m["lon"], m["lat"]))} for m in d["marker"]],
        {"segment_id": "integer", "number": "text", "kind": "marker_kind", "geom": "geometry",
         "chainage_km": "numeric", "province": "text", "district": "text", "commune": "text",
         "post_id": "integer", "access": "marker_access", "terrain_difficulty": "smallint",
         "requested_by_post": "boolean", "last_inspected_on": "date", "notes": "text"},
        tail="ON CONFLICT (segment_id, number) DO NOTHING")
    marker = _ids(conn, "SELECT s.code, m.number, m.id FROM marker m JOIN border_segment s ON s.id = m.segment_id")

    _insert(conn, "donor", d["donor"],
            {"code": "text", "name": "text", "name_en": "text", "kind": "donor_kind",
             "is_group": "boolean", "province": "text", "notes": "text"},
            tail="ON CONFLICT (code) DO NOTHING")
    donor = _ids(conn, "SELECT code, id FROM donor")
    _insert(conn, "donor_member", [
        {"group_id": donor[m["group"]], "member_id": donor[m["member"]], "role": m["role"]}
        for m in d["donor_member"]],
        {"group_id": "integer", "member_id": "integer", "role": "text"})
    _insert(conn, "campaign", [{**c, "organiser_id": donor[c["organiser"]]} for c in d["campaign"]],
            {"code": "text", "name": "text", "organiser_id": "integer", "province": "text",
             "plan_date": "date", "starts_on": "date", "ends_on": "date",
             "target_amount": "numeric", "notes": "text"},
            tail="ON CONFLICT (code) DO NOTHING")
    campaign = _ids(conn, "SELECT code, id FROM campaign")

    _insert(conn, "branch_road", [
        {**r, "post_id": post[r["post"]], "geom": ewkt(r["geom"]),
         "as_built_geom": ewkt(r["as_built"]) if r.get("as_built") else None}
        for r in d["road"]],
        {"code": "text", "name": "text", "post_id": "integer", "province": "text", "district": "text",
         "commune": "text", "status": "road_status", "geom": "geometry", "as_built_geom": "geometry",
         "width_m": "numeric", "estimated_cost": "numeric", "actual_cost": "numeric",
         "planned_start": "date", "planned_end": "date", "actual_start": "date",
         "completed_on": "date", "contractor": "text", "progress_pct": "smallint", "notes": "text"},
        tail="ON CONFLICT (code) DO NOTHING")
    road = _ids(conn, "SELECT code, id FROM branch_road")
    _insert(conn, "road_marker", [
        {"road_id": road[rm["road"]], "marker_id": marker[(rm["segment"], rm["number"])]}
        for rm in d["road_marker"]], {"road_id": "integer", "marker_id": "integer"})
    _insert(conn, "road_event", [{**e, "road_id": road[e["road"]]} for e in d["road_event"]],
            {"road_id": "integer", "from_status": "road_status", "to_status": "road_status",
             "occurred_at": "timestamptz", "recorded_at": "timestamptz", "actor": "text",
             "note": "text", "progress_pct": "smallint", "evidence": "jsonb", "geom": "geometry"},
            tail="WHERE NOT EXISTS (SELECT 1 FROM road_event e WHERE e.road_id = r.road_id)")
    _insert(conn, "funding_tx", [
        {**t, "donor_id": donor[t["donor"]], "road_id": road.get(t["road"]),
         "campaign_id": campaign.get(t["campaign"])} for t in d["funding_tx"]],
        {"donor_id": "integer", "road_id": "integer", "campaign_id": "integer", "kind": "funding_kind",
         "amount": "numeric", "tx_date": "date", "reference": "text", "note": "text",
         "idempotency_key": "text"}, tail="ON CONFLICT (idempotency_key) DO NOTHING")

    _insert(conn, "inauguration", [{**i, "geom": ewkt(i["geom"])} for i in d["inauguration"]],
            {"title": "text", "held_on": "date", "place": "text", "commune": "text", "district": "text",
             "province": "text", "geom": "geometry", "officials": "text", "notes": "text"},
            tail="WHERE NOT EXISTS (SELECT 1 FROM inauguration i WHERE i.title = r.title "
                 "AND i.held_on = r.held_on AND i.place = r.place)")
    ceremony = _ids(conn, "SELECT title, held_on::text, place, id FROM inauguration")
    _insert(conn, "inauguration_road", [
        {"inauguration_id": ceremony[i["ceremony"]], "road_id": road[i["road"]]}
        for i in d["inauguration_road"]], {"inauguration_id": "integer", "road_id": "integer"})
    _insert(conn, "inauguration_donor", [
        {"inauguration_id": ceremony[i["ceremony"]], "donor_id": donor[i["donor"]]}
        for i in d["inauguration_donor"]], {"inauguration_id": "integer", "donor_id": "integer"})

    _insert(conn, "village", [{**v, "geom": ewkt((v["lon"], v["lat"]))} for v in d["village"]],
            {"code": "text", "name": "text", "country": "text", "admin1": "text", "admin2": "text",
             "admin3": "text", "population": "integer", "households": "integer", "geom": "geometry"},
            tail="ON CONFLICT (code) DO NOTHING")
    village = _ids(conn, "SELECT code, id FROM village")
    _insert(conn, "village_pair", [
        {"vn_village_id": village[p["vn"]], "foreign_village_id": village[p["foreign"]],
         "post_id": post[p["post"]], "twinned_on": p["twinned_on"], "notes": p["notes"]}
        for p in d["village_pair"]],
        {"vn_village_id": "integer", "foreign_village_id": "integer", "post_id": "integer",
         "twinned_on": "date", "notes": "text"}, tail="ON CONFLICT (vn_village_id, foreign_village_id) DO NOTHING")
    pair = _ids(conn, "SELECT v.code, f.code, p.id FROM village_pair p "
                      "JOIN village v ON v.id = p.vn_village_id JOIN village f ON f.id = p.foreign_village_id")
    _insert(conn, "pair_meeting", [{**m, "pair_id": pair[m["pair"]]} for m in d["pair_meeting"]],
            {"pair_id": "integer", "held_on": "date", "year": "smallint", "quarter": "smallint",
             "place": "text", "attendance": "integer", "topics": "text[]", "agreements": "text",
             "notes": "text"}, tail="ON CONFLICT (pair_id, year, quarter) DO NOTHING")
