"""The app in a real browser: ``streamlit run app.py`` on a free localhost port, driven by headless Chromium.

Used by the end-to-end test and scripts/screenshots.py. Only the system's Chromium and chromedriver are
used (Debian: ``apt-get install chromium chromium-driver``); their paths are given to selenium explicitly
and Selenium Manager, which would download a browser or driver, is blocked.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVER_PATHS = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver", "/usr/lib/chromium-browser/chromedriver")
INSTALL_HINT = ("install Debian's chromium and chromedriver (as root: apt-get update && apt-get install -y chromium "
                "chromium-driver) and selenium (pip install selenium, in tokbench's test extra)")


class BrowserUnavailable(RuntimeError):
    """Chromium, chromedriver or selenium is missing on this machine."""


def find_chromium() -> tuple[str, str]:
    """(browser, driver) executables, from $CHROMIUM / $CHROMEDRIVER or the usual Debian places."""
    browser = os.environ.get("CHROMIUM") or next((p for p in map(shutil.which, BROWSER_NAMES) if p), None)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or \
        next((p for p in DRIVER_PATHS if os.access(p, os.X_OK)), None)
    missing = [f"{what} ({path})" if path else what for what, path in (("chromium", browser), ("chromedriver", driver))
               if not path or not os.access(path, os.X_OK)]
    if missing:
        raise BrowserUnavailable(f"{' and '.join(missing)} not found: {INSTALL_HINT}")
    return browser, driver  # type: ignore[return-value]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(app: str | Path, reports: str | Path, port: Optional[int] = None, log: Optional[Path] = None,
                     timeout: float = 120.0, env: Optional[dict] = None) -> Iterator[str]:
    """Run ``streamlit run app --server.headless true`` on localhost; yields its URL once it answers."""
    app = Path(app).resolve()
    port = port or free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--server.runOnSave", "false", "--", "--reports", str(reports)]
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=str(app.parent), stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                tail = Path(log).read_text(errors="replace")[-2000:] if log else ""
                raise RuntimeError(f"streamlit exited with code {proc.returncode} before serving {url}\n{tail}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        if log:
            out.close()


def _block_selenium_manager() -> None:
    """Selenium Manager downloads browsers and drivers; with explicit paths it is never needed."""
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    def refuse(self, *args, **kwargs):
        raise BrowserUnavailable("Selenium Manager was about to run (it downloads browsers); paths must be explicit")

    SeleniumManager.binary_paths = refuse  # type: ignore[method-assign]


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator["object"]:
    """A headless Chromium WebDriver using the system browser and driver only."""
    browser, driver_path = find_chromium()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        raise BrowserUnavailable(f"selenium is not importable ({e}): {INSTALL_HINT}") from None
    _block_selenium_manager()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                "--force-device-scale-factor=1", f"--window-size={width},{height}", "--no-first-run",
                "--disable-extensions", "--disable-background-networking"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def page_text(driver) -> str:
    return driver.execute_script("return document.body ? document.body.innerText : ''") or ""


def app_running(driver) -> bool:
    """Whether Streamlit is still executing the script (its status widget shows while it runs)."""
    return bool(driver.execute_script(
        "const w = document.querySelector('[data-testid=\"stStatusWidget\"]');"
        "return !!(w && /running/i.test(w.innerText || w.getAttribute('aria-label') || ''))"
        " || !!document.querySelector('[data-testid=\"stSpinner\"]');"))


def wait_for(driver, condition, timeout: float = 90.0, what: str = "condition", poll: float = 0.25):
    """Poll ``condition(driver)`` until it returns something truthy; a timeout says what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition(driver)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}; page text:\n"
                               f"{page_text(driver)[:1500]}")
        time.sleep(poll)


def wait_for_text(driver, *texts: str, timeout: float = 90.0) -> str:
    """Wait until every text is on the page and the script has finished; returns the page text."""
    def ready(d):
        t = page_text(d)
        return t if all(x in t for x in texts) and not app_running(d) else None
    return wait_for(driver, ready, timeout, what=" and ".join(repr(t) for t in texts))


def loaded_images(driver, min_width: int = 1) -> int:
    """Images in the main area that finished loading with real pixels."""
    return int(driver.execute_script(
        "return Array.from(document.querySelectorAll('[data-testid=\"stMain\"] img'))"
        f".filter(i => i.complete && i.naturalWidth >= {int(min_width)}).length;"))


def charts_drawn(driver) -> int:
    """Vega charts that rendered marks (an SVG or canvas inside a vega-embed container)."""
    return int(driver.execute_script(
        "return Array.from(document.querySelectorAll('.vega-embed'))"
        ".filter(e => e.querySelector('canvas, svg')).length;"))


def _content_height(driver) -> int:
    return int(driver.execute_script(
        "const m = document.querySelector('[data-testid=\"stMain\"]') || document.body;"
        "const b = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
        "return Math.ceil(Math.max(m.scrollHeight, b ? b.getBoundingClientRect().bottom + 40 : 0));"))


def save_full_page(driver, path: str | Path, width: Optional[int] = None, max_height: int = 8000) -> Path:
    """Screenshot of the whole page: the viewport is stretched (DevTools device metrics) to the content's
    height, since Streamlit scrolls inside its main container rather than the document."""
    width = int(width or driver.execute_script("return window.innerWidth"))
    height = 0
    for _ in range(4):  # the layout may grow once the viewport does (charts, lazy tables)
        wanted = min(max(_content_height(driver), 400), max_height)
        if wanted == height:
            break
        height = wanted
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        time.sleep(1.0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path
