"""The browser part: the board's own store and render modules in headless Chromium,
2,000 agents and 50 changes/s (static/bench.html drives them and writes its figures,
script time per animation frame and long tasks, as JSON into #bench-result, then
sets data-done="true")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wallboard.paths import web_dir

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def measure(base_url: str, timeout_s: float = 120.0) -> dict[str, Any]:
    """Open {base_url}/static/bench.html and return what the page wrote (parsed JSON if it is)."""
    if not (web_dir("static") / "bench.html").exists():
        return {"skipped": "static/bench.html is not there yet"}
    if not Path(CHROMIUM).exists():
        return {"skipped": f"no browser at {CHROMIUM}"}
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base_url}/static/bench.html")
            page.wait_for_function(
                "() => document.querySelector('#bench-result')?.dataset.done === 'true'",
                timeout=timeout_s * 1000)
            text = page.text_content("#bench-result") or ""
        finally:
            browser.close()
    try:
        result: dict[str, Any] = json.loads(text)
    except ValueError:
        result = {"text": text.strip()}
    if errors:
        result["page_errors"] = errors[:5]
    return result
