"""Headless Debian Chromium through Selenium, as the project's browser tests use it."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1500,1100",
]


def find_browser() -> tuple[str, str] | None:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


def make_driver() -> webdriver.Chrome:
    found = find_browser()
    if found is None:
        raise RuntimeError("Debian's chromium and chromium-driver are needed: ./dev setup installs them")
    binary, driver = found
    options = Options()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def console_errors(driver: webdriver.Chrome) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> None:
    urllib.request.urlopen(url, timeout=2)


@contextlib.contextmanager
def gunicorn_app(cwd: Path, env: dict[str, str], ready: Callable[[str], object] = _get) -> Iterator[str]:
    """The app under gunicorn (app/gunicorn_conf.py, 2 workers) on a free loopback port, configured by ``env``
    (TRELLIS_*); yields its base URL once ``ready(url)`` answers, and stops it afterwards."""
    from tests.conftest import ROOT

    port = free_port()
    server = subprocess.Popen(
        # the repo's own gunicorn settings, as a team runs them, with 2 workers on a loopback port
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "app" / "gunicorn_conf.py"),
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "trellis.app.wsgi:server",
        ],  # fmt: skip
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                ready(base + "/")
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(server.stdout.read()) from None
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


def wait(driver: webdriver.Chrome, condition, timeout: float = 60):
    """Wait for the condition; an element the page redrew between two reads is read again, not a failure."""
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def click(driver: webdriver.Chrome, element_id: str) -> None:
    """Scroll the element to the middle of the window first, as a person would before clicking."""
    element = driver.find_element(By.ID, element_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    wait(driver, EC.element_to_be_clickable((By.ID, element_id)), timeout=30)
    try:
        element.click()
    except ElementClickInterceptedException:  # the page moved under the pointer (a re-render): click the element
        driver.execute_script("arguments[0].click()", element)


def text(driver: webdriver.Chrome, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def checked(driver: webdriver.Chrome, radio_id: str) -> str | None:
    return driver.execute_script(f"const i = document.querySelector('#{radio_id} input:checked'); return i && i.value;")
