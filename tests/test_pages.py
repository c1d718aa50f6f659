"""The web pages over the demo data, without a browser: what they embed, their filters,
languages, static files and caching. tests/browser/ checks what a browser draws."""

from __future__ import annotations

import html as htmllib
import json
import re

import pytest
from sqlalchemy import text

from geo_api.auth import POST_TRANSITIONS
from geo_api.domain import lifecycle
from web_map import charts, static_files
from geo_api.settings import MapSettings
from web_map.i18n import JS_KEYS, WORDS, Texts

PAGES = ["/", "/post", "/planner", "/villages", "/charts"]


def config_of(html: str) -> dict:
    """The configuration a page hands to its script (BR.setup({...}))."""
    m = re.search(r"BR\.setup\((\{.*?\})\);</script>", html, re.S)
    assert m, "the page has no BR.setup(...)"
    return json.loads(m.group(1))


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


@pytest.fixture(scope="module")
def ids(engine, demo_counts) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("""
            SELECT 'cluster', id FROM donor WHERE code = 'CTD-THTH-LS'
            UNION ALL SELECT 'campaign', id FROM campaign WHERE code = '39/KH-CTĐ'
            UNION ALL SELECT 'binh_nghi', id FROM border_post WHERE code = 'BP-BINH-NGHI'
            UNION ALL SELECT 'road_1033', id FROM branch_road WHERE code = 'DN-LS-0001'
        """)).all())


# ---------------------------------------------------------------------------- languages


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_vietnamese_by_default_with_english_one_click_away(client, auth_headers, path):
    signed_in = auth_headers("planner") if path == "/planner" else {}
    vi = client.get(path, headers=signed_in)
    assert vi.status_code == 200
    assert vi.headers["content-type"] == "text/html; charset=utf-8"
    assert '<html lang="vi">' in vi.text
    assert "Bản đồ nhà tài trợ" in vi.text and 'id="lang-switch"' in vi.text
    switch = re.search(r'id="lang-switch" href="([^"]+)"', vi.text).group(1)
    assert switch == f"{path}?lang=en"
    en = client.get(switch, headers=signed_in)
    assert '<html lang="en">' in en.text
    assert "Donor map" in en.text and "Bản đồ nhà tài trợ" not in en.text
    assert config_of(en.text)["words"]["status_inaugurated"] == "Inaugurated"
    back = re.search(r'id="lang-switch" href="([^"]+)"', en.text).group(1)
    assert back == path
    # Links to the other pages keep the language.
    assert 'href="/planner?lang=en"' in en.text


def test_the_language_switch_keeps_the_filters(client):
    html = client.get("/", params=[("status", "inaugurated"), ("province", "Lạng Sơn")]).text
    switch = htmllib.unescape(re.search(r'id="lang-switch" href="([^"]+)"', html).group(1))
    assert switch == "/?status=inaugurated&province=L%E1%BA%A1ng+S%C6%A1n&lang=en"


def test_every_word_exists_in_both_languages():
    for key, (vi, en) in WORDS.items():
        assert vi.strip() and en.strip(), key
    assert set(JS_KEYS) <= set(WORDS)


def test_numbers_and_money_follow_the_language():
    vi, en = Texts("vi"), Texts("en")
    assert vi.money(1_250_000_000) == "1.250.000.000 đ"
    assert en.money(1_250_000_000) == "1,250,000,000 VND"
    assert vi.num(12.34, 1) == "12,3" and en.num(12.34, 1) == "12.3"
    assert vi.money_short(76_000_000_000) == "76 tỷ" and en.money_short(1_500_000_000) == "1.5 bn"
    assert vi.date("2022-11-16") == "16/11/2022" and en.date("2022-11-16") == "16 Nov 2022"
    assert Texts("fr").lang == "vi"


# -------------------------------------------------------------------- offline by design


@pytest.mark.parametrize("path", ["/", "/post?post_id=1", "/planner", "/villages", "/charts", "/?mode=tiles"])
def test_pages_load_scripts_and_styles_only_from_the_app(client, path):
    html = client.get(path).text
    refs = re.findall(r'<script[^>]+src="([^"]+)"', html) + re.findall(r'<link[^>]+href="([^"]+)"', html)
    assert refs
    for ref in refs:
        assert ref.startswith(("/static/", "data:")), ref
        if ref.startswith("/static/"):
            assert client.get(ref).status_code == 200, ref
    assert "cdn." not in html and "unpkg.com" not in html and "code.jquery.com" not in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_static_files_are_cached_for_a_year_when_versioned(client):
    url = static_files.static_url("vendor/leaflet/leaflet.js")
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/javascript")
    assert "immutable" in r.headers["Cache-Control"]
    assert r.headers["Content-Encoding"] == "gzip"
    again = client.get(url, headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    stale = client.get("/static/vendor/leaflet/leaflet.js?v=old")
    assert stale.status_code == 200 and "immutable" not in stale.headers["Cache-Control"]
    assert client.get("/static/vendor/leaflet/images/marker-icon.png").headers["content-type"] == "image/png"


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/%2e%2e/pages.py", "/static/..%2fpages.py",
                                  "/static/vendor", "/static/"])
def test_static_files_outside_the_folder_or_missing_are_404(client, path):
    assert client.get(path).status_code == 404


# ---------------------------------------------------------------------------- donor map


def test_donor_map_embeds_every_road_marker_post_and_inauguration(client, demo_counts):
    cfg = config_of(client.get("/").text)
    assert cfg["mode"] == "inline"
    assert cfg["drawn"] == {"roads": demo_counts["branch_road"], "markers": demo_counts["marker"],
                            "posts": demo_counts["border_post"], "inaugurations": demo_counts["inauguration"]}
    assert len(cfg["lookup"]["donors"]) == demo_counts["donor"]


def test_donor_map_summary_adds_up(client, engine, demo_counts):
    html = client.get("/?lang=en").text
    roads = int(re.search(r'data-summary="roads">([\d,]+)<', html).group(1).replace(",", ""))
    pledged = re.search(r'data-summary="pledged" data-value="(\d+)" title="([\d,]+) VND">', html)
    assert roads == demo_counts["branch_road"]
    assert int(pledged.group(1)) == int(pledged.group(2).replace(",", "")) == scalar(
        engine, "SELECT sum(amount) FROM funding_tx WHERE kind = 'pledge' AND road_id IS NOT NULL")
    rows = re.findall(r'<tr data-status="(\w+)">.*?<td class="num">([\d,]+)</td>', html, re.S)
    assert len(rows) == 8 and sum(int(n.replace(",", "")) for _, n in rows) == roads


def test_donor_map_filters_by_status_province_donor_group_and_campaign(client, engine, ids):
    def drawn(**params) -> int:
        r = client.get("/", params=params)
        assert r.status_code == 200
        return config_of(r.text)["drawn"]["roads"]

    assert drawn(status=["inaugurated", "completed"]) == scalar(
        engine, "SELECT count(*) FROM branch_road WHERE status IN ('inaugurated', 'completed')")
    assert drawn(province="Lạng Sơn") == scalar(engine, "SELECT count(*) FROM branch_road WHERE province = 'Lạng Sơn'")
    by_group = client.get("/api/roads", params={"donor_id": ids["cluster"], "limit": 1000}).json()
    assert drawn(donor_id=ids["cluster"]) == by_group["numberReturned"] >= 4
    assert drawn(campaign_id=ids["campaign"]) == scalar(
        engine, "SELECT count(DISTINCT road_id) FROM funding_tx WHERE campaign_id = :c", c=ids["campaign"])
    # Empty selects (the form's "All") mean no filter.
    assert drawn(donor_id="", campaign_id="", province="") == scalar(engine, "SELECT count(*) FROM branch_road")


def test_donor_filter_summary_counts_that_donors_money(client, engine, ids):
    html = client.get("/", params={"donor_id": ids["cluster"], "lang": "en"}).text
    pledged = int(re.search(r'data-summary="pledged" data-value="(\d+)"', html).group(1))
    assert pledged == scalar(engine, """
        SELECT sum(f.amount) FROM funding_tx f WHERE f.kind = 'pledge' AND f.road_id IS NOT NULL
        AND (f.donor_id = :g OR f.donor_id IN (SELECT member_id FROM donor_member WHERE group_id = :g))""",
        g=ids["cluster"])
    assert f'<option value="{ids["cluster"]}" selected>' in html


@pytest.mark.parametrize("params, status, reason", [
    ({"status": "built"}, 422, "status"),
    ({"donor_id": "abc"}, 422, "donor_id"),
    ({"donor_id": "0"}, 422, "donor_id"),
    ({"campaign_id": "1.5"}, 422, "campaign_id"),
    ({"mode": "fast"}, 422, "mode"),
    ({"lang": "fr"}, 422, "lang"),
    ({"colour": "red"}, 422, "colour"),
    ({"province": "x" * 300}, 422, "province"),
    ({"donor_id": "99999"}, 404, "donor 99999 not found"),
    ({"campaign_id": "99999"}, 404, "campaign 99999 not found"),
])
def test_donor_map_refuses_bad_filters_with_a_reason(client, engine, params, status, reason):
    before = scalar(engine, "SELECT md5(string_agg(id || status::text || version, ',' ORDER BY id)) FROM branch_road")
    r = client.get("/", params=params)
    assert r.status_code == status
    body = r.json()
    assert reason in body["message"]
    assert scalar(engine, "SELECT md5(string_agg(id || status::text || version, ',' ORDER BY id)) "
                          "FROM branch_road") == before


def test_pages_switch_to_vector_tiles_when_the_data_is_large(client, auth_headers, monkeypatch):
    settings = client.app.state.settings
    monkeypatch.setattr(settings, "maps", MapSettings(inline_max_markers=1000))
    html = client.get("/", params={"status": "inaugurated"}).text
    cfg = config_of(html)
    assert cfg["mode"] == "tiles" and "roads" not in cfg["drawn"]
    assert "L.vectorGrid.protobuf(\n                '/tiles/roads/{z}/{x}/{y}.pbf?status=inaugurated'" in html
    assert "/tiles/markers/{z}/{x}/{y}.pbf" in html and 'id="tiles-note"' in html
    assert config_of(client.get("/planner", headers=auth_headers("planner")).text)["mode"] == "tiles"
    assert config_of(client.get("/", params={"mode": "inline"}).text)["mode"] == "inline"
    # Far past the limits, embedding everything is refused rather than attempted.
    monkeypatch.setattr(settings, "maps", MapSettings(inline_max_markers=1000, inline_hard_factor=2))
    refused = client.get("/", params={"mode": "inline"})
    assert refused.status_code == 422 and "too many to put in one page" in refused.json()["message"]
    monkeypatch.undo()
    assert config_of(client.get("/").text)["mode"] == "inline"
    villages = client.get("/villages", params={"mode": "tiles"}).text
    assert "/tiles/villages/{z}/{x}/{y}.pbf?paired=true" in villages
    assert "/tiles/village-pairs/{z}/{x}/{y}.pbf" in villages and config_of(villages)["drawn"] == {}


def _points(html: str, kind: str) -> list[list]:
    m = re.search(rf'BR\.addPoints\([^,]+, "{kind}", (\[[^\]]*\]), (\[.*?\]\])\);', html, re.S)
    return json.loads(m.group(2))


def test_public_pages_show_marker_positions_only_to_about_100_m(client, engine, auth_headers, demo_counts):
    """Pages read anonymously follow the read policy (geo_api.policy) like the API."""
    for path, kind in (("/", "marker"), ("/post?post_id=1", "marker")):
        rows = _points(client.get(path).text, kind)
        assert rows and all(round(r[0], 3) == r[0] and round(r[1], 3) == r[1] for r in rows), path
    # a signed-in reader (the planner page needs one) sees them exactly
    rows = _points(client.get("/planner", headers=auth_headers("planner")).text, "access")
    assert sum(round(r[0], 3) != r[0] for r in rows) > len(rows) / 2
    exact = scalar(engine, "SELECT count(*) FROM marker WHERE ST_X(geom) <> round(ST_X(geom)::numeric, 3)")
    assert exact > demo_counts["marker"] / 2  # so the rounding above is the page's doing
    posts = _points(client.get("/").text, "post")
    assert any(round(r[0], 3) != r[0] for r in posts)  # posts are not private


def test_road_popup_data_names_the_donors_and_their_group(client, ids):
    body = client.get(f"/map/roads/{ids['road_1033']}.json").json()
    assert body["code"] == "DN-LS-0001" and body["inaugurated_on"] == "2022-11-16"
    assert body["post"] == "Đồn Biên phòng Bình Nghi"
    names = {d["name"] for d in body["donors"]}
    assert "Sở Ngoại vụ tỉnh Lạng Sơn" in names
    assert all([g["name"] for g in d["groups"]] == ["Cụm thi đua các cơ quan tham mưu tổng hợp tỉnh Lạng Sơn"]
               for d in body["donors"])
    assert client.get("/map/roads/999999.json").status_code == 404
    assert client.get("/map/roads/0.json").status_code == 422


def test_pair_popup_data_has_the_last_meeting_and_the_overdue_flag(client):
    listed = client.get("/api/village-pairs", params={"limit": 1000}).json()["features"]
    pair = next(f for f in listed if f["properties"]["overdue"])
    body = client.get(f"/map/village-pairs/{pair['id']}.json").json()
    assert body["overdue"] is True and body["last_meeting_on"] == pair["properties"]["last_meeting_on"]
    assert body["vn_village"] == pair["properties"]["vn_village"]
    assert client.get("/map/village-pairs/999999.json").status_code == 404


def test_pages_revalidate_with_304_and_are_gzipped(client):
    r = client.get("/villages")
    assert r.headers["Content-Encoding"] == "gzip" and r.headers["Cache-Control"] == "no-cache"
    again = client.get("/villages", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""


# ---------------------------------------------------------------------------- post page


def test_post_page_without_a_post_offers_the_choice(client, demo_counts):
    html = client.get("/post").text
    assert len(re.findall(r'<option value="\d+"', html)) == demo_counts["border_post"]
    assert 'id="status-form"' not in html and 'id="sign-in"' in html and 'autocomplete="current-password"' in html
    assert config_of(html)["page"] == "post"


def test_post_page_lists_its_roads_with_their_next_statuses(client, engine, ids):
    html = client.get("/post", params={"post_id": ids["binh_nghi"]}).text
    cfg = config_of(html)
    with engine.connect() as conn:
        roads = dict(conn.execute(text("SELECT id, status::text FROM branch_road WHERE post_id = :p"),
                                  {"p": ids["binh_nghi"]}).all())
        markers = conn.execute(text("SELECT count(*) FROM marker WHERE post_id = :p"), {"p": ids["binh_nghi"]}).scalar()
    assert cfg["drawn"] == {"roads": len(roads), "markers": markers}
    listed = {int(i) for i in re.findall(r'<li data-road-id="(\d+)">', html)}
    assert listed == set(roads)
    form = json.loads(re.search(r"BRPost\.init\((\{.*?\})\);</script>", html, re.S).group(1))
    assert form["transitions"] == {k: list(v) for k, v in lifecycle.TRANSITIONS.items()}
    assert form["post_transitions"] == sorted(POST_TRANSITIONS) and form["post_id"] == ids["binh_nghi"]
    assert {r["id"]: r["status"] for r in form["roads"]} == roads
    assert all(isinstance(r["version"], int) for r in form["roads"])
    assert 'id="status-form"' in html and 'name="to_status"' in html and 'type="file" id="photo"' in html


def test_post_choice_narrows_to_a_province_when_there_are_many_posts(client, engine, ids):
    from web_map import data

    with engine.connect() as conn:
        everything = data.post_choices(conn)
        many = data.post_choices(conn, most=10)  # as if there were thousands of posts
        lang_son = data.post_choices(conn, "Lạng Sơn", most=10)
    assert len(everything["posts"]) == scalar(engine, "SELECT count(*) FROM border_post")
    assert many["posts"] == [] and "Lạng Sơn" in many["provinces"]
    assert {p["province"] for p in lang_son["posts"]} == {"Lạng Sơn"}
    html = client.get("/post", params={"post_id": ids["binh_nghi"]}).text
    assert '<option value="Lạng Sơn" selected>' in html
    assert client.get("/post", params={"province": "Lạng Sơn", "post_id": ""}).status_code == 200


@pytest.mark.parametrize("params, status", [({"post_id": "99999"}, 404), ({"post_id": "x"}, 422),
                                            ({"post": "1"}, 422)])
def test_post_page_bad_input(client, params, status):
    assert client.get("/post", params=params).status_code == status


# ------------------------------------------------------------------ planner, villages, charts


def test_planner_shows_markers_by_access_roads_and_a_table_per_province(client, engine, auth_headers,
                                                                     demo_counts):
    assert client.get("/planner").status_code == 401  # a sign-in form: the page is for planners
    html = client.get("/planner", headers=auth_headers("planner")).text
    cfg = config_of(html)
    assert cfg["drawn"] == {"markers": demo_counts["marker"], "roads": demo_counts["branch_road"]}
    provinces = scalar(engine, "SELECT count(*) FROM (SELECT province FROM branch_road UNION "
                               "SELECT province FROM marker) p")
    assert len(re.findall(r'<tr data-province=', html)) >= provinces
    for access in ("none", "footpath", "earth", "concrete"):
        n = scalar(engine, "SELECT count(*) FROM marker WHERE access = CAST(:a AS marker_access)", a=access)
        assert re.search(rf'data-access="{access}"><span class="value"><span class="br-dot"[^>]*></span>{n:,}'
                         .replace(",", "."), html)
    assert 'id="ranking"' in html and 'href="/planner/plan"' in html


def test_villages_page_flags_overdue_pairs(client, demo_counts):
    html = client.get("/villages").text
    overdue = client.get("/api/village-pairs", params={"overdue": "true", "limit": 1000}).json()["numberReturned"]
    assert config_of(html)["drawn"]["pairs"] == demo_counts["village_pair"]
    assert html.count('<li data-pair-id=') == demo_counts["village_pair"]
    assert html.count('class="overdue"') == overdue
    assert re.search(rf'data-summary="overdue">{overdue}<', html)


def _bars(html: str, section: str) -> list[tuple[str, str, int]]:
    part = html.split(f'id="{section}"')[1].split("</section>")[0]
    return [(s, c, int(v)) for s, c, v in
            re.findall(r'data-series="([^"]+)" data-category="([^"]*)" data-value="(\d+)"', part)]


def test_charts_draw_the_ledger_and_the_roads(client, engine, ids, demo_counts):
    html = client.get("/charts").text
    years = _bars(html, "chart-money-year")
    assert sum(v for s, _, v in years if s == "pledged") == scalar(
        engine, "SELECT sum(amount) FROM funding_tx WHERE kind = 'pledge'")
    assert sum(v for s, _, v in years if s == "disbursed") == scalar(
        engine, "SELECT sum(amount) FROM funding_tx WHERE kind = 'disbursement'")
    provinces = _bars(html, "chart-roads-province")
    assert sum(v for *_, v in provinces) == demo_counts["branch_road"]
    assert len(_bars(html, "chart-money-donor")) == 2 * 12
    one = _bars(client.get("/charts", params={"donor_id": ids["cluster"]}).text, "chart-money-year")
    assert sum(v for s, _, v in one if s == "pledged") == scalar(engine, """
        SELECT sum(amount) FROM funding_tx WHERE kind = 'pledge' AND (donor_id = :g
        OR donor_id IN (SELECT member_id FROM donor_member WHERE group_id = :g))""", g=ids["cluster"])
    assert client.get("/charts", params={"donor_id": "99999"}).status_code == 404
    assert "<svg" in html and "<script src=\"/static/vendor" not in html


def test_chart_axis_ticks_are_round_numbers():
    assert charts.ticks(47) == [0, 10, 20, 30, 40, 50]
    assert charts.ticks(182_220_000_000)[-1] == 200_000_000_000
    assert charts.ticks(3) == [0, 1, 2, 3]
    assert charts.ticks(0) == [0, 1]
