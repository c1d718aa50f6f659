"""A post officer on a phone-sized screen signs in and moves a road to its next status
through the page's form, which goes through the same API rules as any client: the API's
answer decides, its refusals are shown to the user, and a refused step changes nothing."""

from __future__ import annotations

import json
import struct
import tempfile
import urllib.request
import zlib
from datetime import date
from pathlib import Path

from pagekit import PASSWORD, Page
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select


def tiny_png() -> Path:
    """A real 2×2 PNG (the attachments API checks the bytes, not the name)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\x2e\x7d\x32" * 2 for _ in range(2))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    path = Path(tempfile.mkdtemp()) / "road-surveyed.png"
    path.write_bytes(png)
    return path


def gpx_of(coordinates: list[list[float]]) -> Path:
    points = "".join(f'<trkpt lat="{lat}" lon="{lon}"></trkpt>' for lon, lat in coordinates)
    path = Path(tempfile.mkdtemp()) / "as-built.gpx"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?><gpx version="1.1" creator="test" '
                    f'xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>{points}</trkseg></trk></gpx>')
    return path


def sign_in(page: Page) -> None:
    page.driver.find_element(By.ID, "username").send_keys(page.site.post_user)
    page.driver.find_element(By.ID, "password").send_keys(PASSWORD)
    page.driver.find_element(By.ID, "sign-in-button").click()
    page.wait("!document.getElementById('signed-in').classList.contains('hidden')")
    assert "Trung úy Nguyễn Văn A" in page.driver.find_element(By.ID, "account-name").text


def roads_of(site, status: str) -> list[int]:
    return [r[0] for r in site.sql("SELECT id FROM branch_road WHERE post_id = :p AND status = "
                                   "CAST(:s AS road_status) ORDER BY id", p=site.post_id, s=status)]


def choose(page: Page, road_id: int, to_status: str) -> None:
    """Tap the road's "update" button in the list, then pick the next status."""
    button = page.driver.find_element(By.CSS_SELECTOR, f"#road-list [data-update-road='{road_id}']")
    page.js("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    page.wait(f"document.getElementById('road-select').value === '{road_id}' && "
              f"document.getElementById('road-current').getAttribute('data-fresh') === '{road_id}'")
    page.wait(f"Array.from(document.getElementById('to-status').options).some(function (o) {{ "
              f"return o.value === '{to_status}'; }})")
    Select(page.driver.find_element(By.ID, "to-status")).select_by_value(to_status)


def submit(page: Page) -> str:
    page.driver.find_element(By.ID, "submit-status").click()
    return page.wait("(function () { var m = document.getElementById('form-message'); "
                     "return /\\b(ok|error)\\b/.test(m.className) && m.className + '|' + m.textContent; })()")


def road_state(site, road_id: int) -> tuple:
    return site.sql("SELECT status::text, version, (SELECT count(*) FROM road_event e WHERE e.road_id = r.id), "
                    "(SELECT count(*) FROM attachment a WHERE a.road_id = r.id) FROM branch_road r "
                    "WHERE r.id = :id", id=road_id)[0]


def test_a_post_officer_moves_a_road_to_its_next_status_from_a_phone(phone, site):
    road = roads_of(site, "proposed")[0]
    phone.open(f"/post?post_id={site.post_id}")
    sign_in(phone)
    choose(phone, road, "surveyed")
    # A post account is offered the field steps only: funding and cancelling are a planner's.
    offered = phone.js("return Array.from(document.getElementById('to-status').options).map(function (o) "
                       "{ return o.value; })")
    assert offered == ["surveyed", "suspended"]
    note = "Đã khảo sát thực địa cùng Sở Ngoại vụ; tuyến theo đường mòn hiện có."
    phone.driver.find_element(By.ID, "note").send_keys(note)
    phone.driver.find_element(By.ID, "photo").send_keys(str(tiny_png()))
    outcome = submit(phone)
    assert outcome.startswith("message ok"), outcome
    assert "Đã khảo sát" in outcome

    body, headers = site.api(f"/api/roads/{road}")
    assert body["properties"]["status"] == "surveyed"
    history, _ = site.api(f"/api/roads/{road}/history")
    last = history["items"][-1]
    assert (last["from_status"], last["to_status"], last["note"]) == ("proposed", "surveyed", note)
    assert last["actor"] == site.post_user
    photo_url = last["evidence"]["photos"][0]
    attachment, _ = site.api(photo_url.removesuffix("/content"))
    assert (attachment["owner_kind"], attachment["owner_id"], attachment["kind"]) == ("road", road, "photo")
    # The page shows the new status without a reload: the list, and the form's next steps.
    row = phone.driver.find_element(By.CSS_SELECTOR, f"#road-list li[data-road-id='{road}'] .road-status")
    assert "Đã khảo sát" in row.text
    assert phone.js(f"return BR.index.roads[{road}].feature.properties.status") == "surveyed"
    phone.screenshot("post-form-saved-phone")
    assert phone.errors() == []


def test_a_refused_step_shows_the_apis_reason_and_changes_nothing(phone, site):
    road = roads_of(site, "under_construction")[0]
    before = road_state(site, road)
    phone.open(f"/post?post_id={site.post_id}")
    sign_in(phone)
    choose(phone, road, "completed")
    assert phone.driver.find_element(By.ID, "completed-on").is_displayed()
    outcome = submit(phone)  # no completion date, no GPS track
    assert outcome.startswith("message error"), outcome
    assert "completed needs a completion date" in outcome and "as-built line" in outcome
    assert road_state(site, road) == before
    phone.screenshot("post-form-refused-phone")
    assert [e for e in phone.errors() if "/transitions" not in e] == []  # the 422 itself is logged


def test_a_stale_page_is_told_to_reload_instead_of_overwriting(phone, site):
    road = roads_of(site, "proposed")[-1]
    phone.open(f"/post?post_id={site.post_id}")
    sign_in(phone)
    choose(phone, road, "surveyed")
    # Meanwhile a planner moves the road (from the same version the page holds).
    version = site.api(f"/api/roads/{road}")[0]["properties"]["version"]
    assert phone.js("return document.getElementById('road-current').textContent").endswith(f"v{version}")
    req = urllib.request.Request(
        f"{site.url}/api/roads/{road}/transitions", method="POST",
        data=json.dumps({"to_status": "surveyed", "note": "surveyed by the planner"}).encode(),
        headers={"Authorization": f"Bearer {site.planner_token}", "Content-Type": "application/json",
                 "If-Match": f'"{version}"'})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
    before = road_state(site, road)
    phone.driver.find_element(By.ID, "note").send_keys("my survey")
    outcome = submit(phone)
    assert outcome.startswith("message error"), outcome
    assert "vừa được người khác cập nhật" in outcome
    assert road_state(site, road) == before  # nothing written twice, nothing overwritten
    history, _ = site.api(f"/api/roads/{road}/history")
    assert [e["note"] for e in history["items"] if e["to_status"] == "surveyed"] == ["surveyed by the planner"]


def test_completion_with_a_gps_track_and_a_date(desktop, site):
    road = roads_of(site, "under_construction")[0]
    feature, _ = site.api(f"/api/roads/{road}")
    desktop.open(f"/post?post_id={site.post_id}&lang=en")
    sign_in(desktop)
    choose(desktop, road, "completed")
    desktop.js("arguments[0].value = arguments[1]", desktop.driver.find_element(By.ID, "completed-on"),
               date.today().isoformat())
    desktop.driver.find_element(By.ID, "gpx").send_keys(str(gpx_of(feature["geometry"]["coordinates"])))
    outcome = submit(desktop)
    assert outcome.startswith("message ok"), outcome
    assert "is now “Completed”" in outcome
    body, _ = site.api(f"/api/roads/{road}")
    assert body["properties"]["status"] == "completed" and body["properties"]["as_built"] is True
    assert body["properties"]["completed_on"] == date.today().isoformat()
    history, _ = site.api(f"/api/roads/{road}/history")
    assert history["items"][-1]["evidence"]["gpx_tracks"][0].startswith("/api/attachments/")
    desktop.screenshot("post-form-completed-desktop-en")
    assert desktop.errors() == []


def test_signing_out_and_the_wrong_post(phone, site):
    other = site.sql("SELECT id FROM border_post WHERE id <> :p ORDER BY id LIMIT 1", p=site.post_id)[0][0]
    phone.open(f"/post?post_id={other}")
    sign_in(phone)
    assert phone.driver.find_element(By.ID, "other-post").is_displayed()
    link = phone.driver.find_element(By.ID, "own-post-link").get_attribute("href")
    assert link.endswith(f"/post?post_id={site.post_id}")
    phone.driver.find_element(By.ID, "sign-out").click()
    phone.wait("!document.getElementById('sign-in').classList.contains('hidden')")
    assert phone.js("return sessionStorage.getItem('br.session')") is None
    # Signed in on the page with no post chosen: straight to the officer's own post.
    phone.open("/post", wait_map=False)
    phone.driver.find_element(By.ID, "username").send_keys(site.post_user)
    phone.driver.find_element(By.ID, "password").send_keys(PASSWORD)
    phone.driver.find_element(By.ID, "sign-in-button").click()
    phone.wait(f"location.search === '?post_id={site.post_id}'")
    assert phone.errors() == []
