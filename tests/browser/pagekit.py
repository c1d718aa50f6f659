"""What the browser tests share: the site under test, a page at a screen size, constants."""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from geo_api import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts"
CHROME_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--lang=vi",
]
DESKTOP = (1280, 860)
PHONE = (390, 844)
PASSWORD = "field-password-2024"


@dataclass
class Site:
    url: str
    basemap_prefix: str
    engine: object
    post_id: int          # a post with proposed and under-construction roads
    post_user: str        # its post account (password PASSWORD)
    planner_token: str

    def api(self, path: str, **headers) -> tuple[dict, dict]:
        req = urllib.request.Request(self.url + path, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read()), dict(r.headers)

    def count(self, layer: str, **params) -> int:
        """How many items the read API lists (following its `next` links)."""
        query = "&".join(f"{k}={v}" for k, v in {"limit": 1000, **params}.items())
        path, n = f"/api/{layer}?{query}", 0
        while path:
            body, _ = self.api(path)
            n += body["numberReturned"]
            nxt = [link["href"] for link in body.get("links", []) if link["rel"] == "next"]
            path = nxt[0] if nxt else None
        return n

    def sql(self, statement: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(text(statement), params).all()


class Page:
    """One browser tab at a screen size, with the checks every page test makes."""

    def __init__(self, driver, site: Site, size: tuple[int, int]):
        self.driver, self.site, self.size = driver, site, size
        if size == PHONE:
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": size[0], "height": size[1], "deviceScaleFactor": 2, "mobile": True})
            driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
        else:
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
            driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})

    def open(self, path: str, wait_map: bool = True) -> None:
        self.driver.get(self.site.url + path)
        self.wait("document.readyState === 'complete'")
        if wait_map:
            self.wait("window.BR && BR.ready === true")

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, condition: str, timeout: float = 15.0):
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(f"try {{ return ({condition}); }} catch (e) {{ return false; }}")
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for: {condition}")
            time.sleep(0.05)

    def popup_open(self, selector: str) -> str:
        """Wait for a popup matching `selector` to be open and faded in; its text."""
        text = self.wait(f"document.querySelector('.leaflet-popup-content {selector}').innerText")
        self.wait("getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'")
        return text

    def errors(self) -> list[str]:
        """Console errors since the last call, except the unreachable basemap's tiles."""
        logs = self.driver.get_log("browser")
        return [e["message"] for e in logs if e["level"] == "SEVERE"
                and not e["message"].startswith(self.site.basemap_prefix)]

    def screenshot(self, name: str) -> Path:
        """The whole page (beyond the viewport) as test-artifacts/<name>.png."""
        ARTIFACTS.mkdir(exist_ok=True)
        self.js("window.scrollTo(0, 0)")  # sticky bars are drawn where the page is scrolled to
        width, height = self.js("return [document.documentElement.scrollWidth, "
                                "document.documentElement.scrollHeight]")
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 6000), "scale": 1}})
        path = ARTIFACTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
