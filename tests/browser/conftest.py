"""Browser tests: the app served by uvicorn, driven in headless Chromium through Selenium.

Chromium and ChromeDriver come from the system packages (`chromium`, `chromium-driver`;
`tracker ensure-browser` installs them). Selenium is given both paths, so Selenium
Manager never runs and nothing is downloaded. Without them the tests fail, saying how to
install them: a skipped browser test would hide a broken page.

The server runs over its own database (the demo data plus post accounts), because these
tests change data through the pages. The basemap URL points at a closed local port: the
basemap cannot be reached, as on a phone in the mountains, and every test checks that
the overlays and panels are drawn anyway. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest
from pagekit import CHROME_FLAGS, CHROMEDRIVER, CHROMIUM, DESKTOP, PASSWORD, PHONE, Page, Site
from sqlalchemy import create_engine, text

from geo_api import db


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



@pytest.fixture(scope="session")
def site(fresh_database) -> Iterator[Site]:
    import uvicorn

    from geo_api.auth import create_account, issue_token
    from geo_api.demo import load_demo
    from geo_api.main import create_app
    from geo_api.settings import MapSettings, Settings

    url = fresh_database()
    db.upgrade(url)
    engine = create_engine(url)
    load_demo(engine)
    with engine.begin() as conn:
        post_id = conn.execute(text("""
            SELECT post_id FROM branch_road GROUP BY post_id
            HAVING count(*) FILTER (WHERE status = 'proposed') >= 2
               AND count(*) FILTER (WHERE status = 'under_construction') >= 1
            ORDER BY post_id LIMIT 1""")).scalar_one()
        create_account(conn, username="post-officer", role="post", password=PASSWORD,
                       display_name="Trung úy Nguyễn Văn A", post=str(post_id))
        planner = create_account(conn, username="planner-one", role="planner", password=PASSWORD)
        token, _ = issue_token(conn, planner.id)

    dead = _free_port()  # nothing listens there: the basemap "cannot be reached"
    app = create_app(url, Settings(maps=MapSettings(basemap_url=f"http://127.0.0.1:{dead}/{{z}}/{{x}}/{{y}}.png")))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield Site(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{dead}/", engine, post_id,
                   "post-officer", token)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.fail(f"the browser tests need {' and '.join(missing)}: install them with "
                    f"`tracker ensure-browser` (or `apt-get install -y chromium chromium-driver`)",
                    pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS + [f"--user-data-dir={profile}", f"--window-size={DESKTOP[0]},{DESKTOP[1]}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def desktop(browser, site) -> Iterator[Page]:
    page = Page(browser, site, DESKTOP)
    browser.get_log("browser")
    yield page
    browser.execute_script("try { sessionStorage.clear(); } catch (e) {}")


@pytest.fixture
def phone(browser, site) -> Iterator[Page]:
    page = Page(browser, site, PHONE)
    browser.get_log("browser")
    yield page
    browser.execute_script("try { sessionStorage.clear(); } catch (e) {}")
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})
