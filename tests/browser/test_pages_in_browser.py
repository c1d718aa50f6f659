"""Every page in a real browser, on a desktop and on a phone-sized screen: no JavaScript
errors, the expected number of roads / markers / pairs drawn (compared with the read API),
overlays drawn while the basemap cannot be reached, popups with the donors' amounts, and
the language switch. Screenshots of each page go to test-artifacts/."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from pagekit import DESKTOP, PASSWORD, PHONE, Page

DRAWN = {
    "roads": "document.querySelectorAll('path.br-road').length",
    "markers": "document.querySelectorAll('path.br-marker').length",
    "pairs": "document.querySelectorAll('path.br-pair').length",
    "overdue": "document.querySelectorAll('path.br-pair-overdue').length",
    "villages": "document.querySelectorAll('path.br-village').length",
    # Clustered markers: the numbers on the clusters plus the markers drawn on their own.
    "clustered": "Array.from(document.querySelectorAll('.br-cluster span'))"
                 ".reduce(function (n, s) { return n + Number(s.textContent); }, 0)"
                 " + document.querySelectorAll('path.br-marker').length",
}


def check_basemap_fallback(page: Page) -> None:
    """The basemap's tiles fail; the page says so and draws everything else anyway."""
    page.wait("BR.basemapState().failed > 0")
    assert page.js("return BR.basemapState().loaded") == 0
    assert page.driver.find_element(By.CSS_SELECTOR, ".br-notice").is_displayed()
    assert page.js("return document.querySelectorAll('.leaflet-outlines-pane path, "
                   ".leaflet-pane path').length") > 0


def check_fits(page: Page) -> None:
    """Nothing but scrolling panels is wider than the screen."""
    width = page.js("return document.documentElement.clientWidth")
    assert page.js("return document.documentElement.scrollWidth") <= width + 1
    if page.size == PHONE:
        assert page.driver.find_element(By.CSS_SELECTOR, ".topbar nav").is_displayed()
        assert page.driver.find_element(By.ID, "lang-switch").is_displayed()


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_donor_map_draws_every_road_and_marker(browser, site, size):
    page = Page(browser, site, size)
    browser.get_log("browser")
    page.open("/")
    roads, markers = site.count("roads"), site.count("markers")
    assert page.js(f"return {DRAWN['roads']}") == roads == page.js("return BR.stats().roads")
    page.wait(f"{DRAWN['clustered']} === {markers}")
    assert page.js("return BR.stats().inaugurations") == site.count("inaugurations")
    check_basemap_fallback(page)
    check_fits(page)
    page.screenshot(f"donor-map-{'phone' if size == PHONE else 'desktop'}")
    assert page.errors() == []


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_planner_draws_markers_by_access_and_roads(browser, site, size):
    """The planner page is for planners: a sign-in form first, then the map."""
    page = Page(browser, site, size)
    browser.delete_all_cookies()
    page.open("/planner", wait_map=False)
    assert browser.find_element(By.ID, "page-sign-in").is_displayed()
    browser.find_element(By.ID, "username").send_keys("planner-one")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "sign-in-button").click()
    page.wait("window.BR && BR.ready === true")
    browser.get_log("browser")  # the 401 of the sign-in form itself
    assert page.js(f"return {DRAWN['markers']}") == site.count("markers")
    assert page.js(f"return {DRAWN['roads']}") == site.count("roads")
    for access in ("none", "footpath", "earth", "concrete"):
        assert page.js(f"return document.querySelectorAll('path.br-access-{access}').length") == \
            site.count("markers", access=access)
    assert page.driver.find_element(By.CSS_SELECTOR, "#ranking a[href='/planner/plan']").is_displayed() or \
        size == PHONE
    check_basemap_fallback(page)
    check_fits(page)
    page.screenshot(f"planner-{'phone' if size == PHONE else 'desktop'}")
    assert page.errors() == []


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_villages_map_joins_each_pair_and_flags_the_overdue(browser, site, size):
    page = Page(browser, site, size)
    browser.get_log("browser")
    page.open("/villages")
    body, _ = site.api("/api/village-pairs?limit=1000")
    pairs = body["features"]
    overdue = [f for f in pairs if f["properties"]["overdue"]]
    assert page.js(f"return {DRAWN['pairs']}") == len(pairs) == site.count("village-pairs")
    assert page.js(f"return {DRAWN['overdue']}") == len(overdue) == site.count("village-pairs", overdue="true")
    villages = {f["properties"][k] for f in pairs for k in ("vn_village_id", "foreign_village_id")}
    assert page.js(f"return {DRAWN['villages']}") == len(villages)
    # The list's "show" button opens the pair's popup with its last meeting.
    first = page.driver.find_element(By.CSS_SELECTOR, "#pair-list li button")
    page.js("arguments[0].scrollIntoView()", first)
    first.click()
    text = page.popup_open(".br-popup-pair")
    assert "Giao ban gần nhất" in text and "Quá hạn giao ban" in text  # overdue pairs are listed first
    check_basemap_fallback(page)
    check_fits(page)
    page.screenshot(f"villages-{'phone' if size == PHONE else 'desktop'}")
    assert page.errors() == []


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_charts_draw_svg_from_the_data(browser, site, size):
    page = Page(browser, site, size)
    browser.get_log("browser")
    page.open("/charts", wait_map=False)
    total = page.js("return Array.from(document.querySelectorAll('#chart-roads-province rect.bar'))"
                    ".reduce(function (n, r) { return n + Number(r.dataset.value); }, 0)")
    assert total == site.count("roads")
    assert page.js("return document.querySelectorAll('#chart-money-year rect.bar').length") > 0
    width = page.js("return document.querySelector('#chart-money-year svg').getBoundingClientRect().width")
    assert 0 < width <= size[0]
    check_fits(page)
    page.screenshot(f"charts-{'phone' if size == PHONE else 'desktop'}")
    assert page.errors() == []


def test_post_page_draws_the_posts_markers_and_roads(phone, site):
    phone.open(f"/post?post_id={site.post_id}")
    assert phone.js(f"return {DRAWN['markers']}") == site.count("markers", post_id=site.post_id)
    assert phone.js(f"return {DRAWN['roads']}") == site.count("roads", post_id=site.post_id)
    assert len(phone.driver.find_elements(By.CSS_SELECTOR, "#road-list li")) == site.count("roads", post_id=site.post_id)
    check_basemap_fallback(phone)
    check_fits(phone)
    phone.screenshot("post-page-phone")
    assert phone.errors() == []


def test_tiles_mode_draws_roads_and_markers_from_vector_tiles(desktop, site):
    desktop.open("/?mode=tiles")
    desktop.wait("document.querySelectorAll('.leaflet-tile path').length > 0")
    assert desktop.js("return BR.stats().roads") is None  # nothing inline
    tiles = desktop.js("return performance.getEntriesByType('resource').map(function (e) { return e.name; })"
                       ".filter(function (n) { return n.indexOf('/tiles/') >= 0; })")
    assert any("/tiles/roads/" in t for t in tiles) and any("/tiles/markers/" in t for t in tiles)
    check_basemap_fallback(desktop)
    desktop.screenshot("donor-map-tiles-desktop")
    assert desktop.errors() == []


def test_villages_in_tiles_mode_draw_the_pairs_from_vector_tiles(desktop, site):
    desktop.open("/villages?mode=tiles")
    desktop.wait("document.querySelectorAll('.leaflet-tile path').length > 0")
    tiles = desktop.js("return performance.getEntriesByType('resource').map(function (e) { return e.name; })"
                       ".filter(function (n) { return n.indexOf('/tiles/village-pairs/') >= 0; })")
    assert tiles
    assert desktop.errors() == []


# ------------------------------------------------------------------------------ popups


def _vnd(amount: int, lang: str) -> str:
    s = f"{amount:,}"
    return s.replace(",", ".") + " đ" if lang == "vi" else s + " VND"


def click_road(page: Page, road_id: int) -> None:
    """Zoom to the road and click on its line, like a person would."""
    page.js("var l = BR.index.roads[arguments[0]]; BR.map.closePopup();"
            "BR.map.fitBounds(l.getBounds(), {maxZoom: 15, padding: [60, 60], animate: false});", road_id)
    point = page.wait("""(function () {
        var l = BR.index.roads[%d], map = BR.map, box = map.getContainer().getBoundingClientRect();
        var ll = l.getLatLngs();
        for (var i = 0; i + 1 < ll.length; i++) {
            var mid = L.latLng((ll[i].lat + ll[i + 1].lat) / 2, (ll[i].lng + ll[i + 1].lng) / 2);
            var p = map.latLngToContainerPoint(mid), x = box.left + p.x, y = box.top + p.y;
            if (document.elementFromPoint(x, y) === l.getElement()) return [Math.round(x), Math.round(y)];
        }
        return null; })()""" % road_id)
    actions = ActionChains(page.driver)
    actions.w3c_actions.pointer_action.move_to_location(*point)
    actions.w3c_actions.pointer_action.click()
    actions.perform()


def test_a_donor_sees_the_dao_vien_roads_with_the_clusters_donors_and_amounts(desktop, site):
    """Done means: the roads inaugurated at Đào Viên on 16/11/2022, the cluster's donors in
    the popup — in Vietnamese, then in English after one click on the language switch."""
    roads, _ = site.api("/api/roads?marker=1033")
    road = roads["features"][0]
    assert road["properties"]["inaugurated_on"] == "2022-11-16"
    funding, _ = site.api(f"/api/funding?road_id={road['id']}&limit=1000")
    totals: dict[int, dict[str, int]] = {}
    for tx in funding["items"]:
        d = totals.setdefault(tx["donor_id"], {"pledge": 0, "disbursement": 0})
        if tx["kind"] in d:
            d[tx["kind"]] += int(tx["amount"])
    donors = {i: site.api(f"/api/donors/{i}")[0] for i in totals}
    cluster = site.api(f"/api/donors/{donors[next(iter(donors))]['groups'][0]}")[0]

    desktop.open("/")
    for lang in ("vi", "en"):
        click_road(desktop, road["id"])
        text = desktop.popup_open(".br-popup-road")
        assert road["properties"]["name"] in text
        assert ("16/11/2022" if lang == "vi" else "16 Nov 2022") in text
        assert cluster["name"] == "Cụm thi đua các cơ quan tham mưu tổng hợp tỉnh Lạng Sơn"
        assert (cluster["name"] if lang == "vi" else cluster["name_en"] or cluster["name"]) in text
        assert "Sở Ngoại vụ tỉnh Lạng Sơn" in [d["name"] for d in donors.values()]
        rows = desktop.js("return Array.from(document.querySelectorAll('.br-popup-road tr.br-donor'))"
                          ".map(function (r) { return r.innerText; })")
        assert len(rows) == len(totals)
        for donor_id, amounts in totals.items():
            d = donors[donor_id]
            name = d["name_en"] if lang == "en" and d["name_en"] else d["name"]
            line = next((r for r in rows if r.startswith(name)), None)
            assert line, f"{name} is not in the popup"
            assert _vnd(amounts["pledge"], lang) in line and _vnd(amounts["disbursement"], lang) in line
        assert desktop.errors() == []
        desktop.screenshot(f"donor-popup-{lang}")
        if lang == "vi":
            desktop.driver.find_element(By.ID, "lang-switch").click()
            desktop.wait("document.documentElement.lang === 'en' && window.BR && BR.ready === true")
            assert "lang=en" in desktop.driver.current_url
            assert desktop.driver.find_element(By.CSS_SELECTOR, ".topbar nav a[aria-current='page']").text == "Donor map"
    # ... and back to Vietnamese, keeping nothing of the English.
    desktop.driver.find_element(By.ID, "lang-switch").click()
    desktop.wait("document.documentElement.lang === 'vi'")
    assert "lang=" not in desktop.driver.current_url
    assert desktop.driver.find_element(By.TAG_NAME, "h1").text == "Bản đồ các đường nhánh được tài trợ"


def test_filters_redraw_the_map_and_the_summary(desktop, site):
    desktop.open("/")
    for box in desktop.driver.find_elements(By.CSS_SELECTOR, "input[name=status]"):
        if box.get_attribute("value") == "inaugurated":
            box.click()
    desktop.driver.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    desktop.wait("location.search.indexOf('status=inaugurated') >= 0 && window.BR && BR.ready === true")
    expected = site.count("roads", status="inaugurated")
    assert desktop.js(f"return {DRAWN['roads']}") == expected
    assert desktop.js("return document.querySelectorAll('path.br-road-inaugurated').length") == expected
    assert desktop.driver.find_element(By.CSS_SELECTOR, "[data-summary=roads]").text == str(expected)
    assert desktop.errors() == []
