"""A headless Chromium (Debian's, through chromedriver) for the web console's tests, its downloads kept in the
test's folder, with the page's websocket frames copied for reading the screen (``helpers.TEE_WEBSOCKETS``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.chromium import CHROMEDRIVER, CHROMIUM, start_chromium
from tests.web.helpers import TEE_WEBSOCKETS

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


def browser_available() -> bool:
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = start_chromium(tmp_path, window="1400,1000")
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TEE_WEBSOCKETS})
        downloads = tmp_path / "downloads"
        downloads.mkdir()
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        driver.downloads = downloads
        yield driver
    finally:
        driver.quit()
