"""Debian's headless Chromium driven by Selenium, and axe-core's accessibility checks."""

from __future__ import annotations

import os
import shutil
from typing import Any

from axe_selenium_python import Axe  # type: ignore[import-untyped]
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

#: WCAG 2.1 levels A and AA (what the issue asks for), as axe-core tags them.
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def chromium(width: int = 1280, height: int = 900, javascript: bool = True) -> webdriver.Chrome:
    """A fresh headless Chromium (no profile shared with other tests)."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        message = "chromium/chromedriver missing: scripts/ensure-browser.sh installs them"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def accessibility_violations(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 AA violations on the page shown now."""
    axe = Axe(driver)
    axe.inject()
    results: dict[str, Any] = axe.run(
        options={"runOnly": {"type": "tag", "values": WCAG_AA}, "resultTypes": ["violations"]}
    )
    return [
        {
            "id": v["id"],
            "help": v["help"],
            "nodes": [node["target"] for node in v["nodes"]][:5],
        }
        for v in results["violations"]
    ]


def phone_width(driver: webdriver.Chrome, width: int = 390, height: int = 844) -> None:
    """Show pages as a phone does (a window cannot be made narrower than 500 px)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True},
    )


def desktop_width(driver: webdriver.Chrome) -> None:
    """Back to the window's own size."""
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
