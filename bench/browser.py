"""The browser part: the board's own store and render modules in headless Chromium,
2,000 agents and 50 changes/s (bench/web/bench.html drives them and writes its figures,
script time per animation frame and long tasks, as JSON into #bench-result, then
sets data-done="true").

The page is the benchmark's, never the wallboard's: `static_server()` serves it from
bench/web/ under /bench/, beside the board's static/ under /static/ as the wallboard
serves it.

`python -m bench.browser [--runs 3] [--agents 2000] [--rate 50] [--seconds 10] [--sort state]`
prints each run's figures and their spread; `--trace FILE` also saves a Chrome trace of
the first run (open it in chrome://tracing or Perfetto)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from wallboard.paths import web_dir

BENCH_WEB = Path(__file__).resolve().parent / "web"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "blink", "blink.user_timing",
                    "v8.execute"]


def measure(base_url: str, timeout_s: float = 120.0, *, agents: int = 2000, rate: int = 50,
            seconds: int = 10, sort: str = "state", polls: bool = True, scroll: str = "",
            layout: str = "tab", trace: str | None = None) -> dict[str, Any]:
    """Open {base_url}/bench/bench.html (`static_server()`) and return what the page wrote
    (parsed JSON if it is)."""
    if not Path(CHROMIUM).exists():
        return {"skipped": f"no browser at {CHROMIUM}"}
    from playwright.sync_api import sync_playwright

    query = urlencode({"agents": agents, "rate": rate, "seconds": seconds, "sort": sort, "polls": int(polls),
                       "scroll": scroll, "layout": layout})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            if trace:
                browser.start_tracing(page=page, path=trace, categories=TRACE_CATEGORIES)
            page.goto(f"{base_url}/bench/bench.html?{query}")
            page.wait_for_function(
                "() => document.querySelector('#bench-result')?.dataset.done === 'true'",
                timeout=timeout_s * 1000)
            if trace:
                browser.stop_tracing()
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


class _StaticHandler(SimpleHTTPRequestHandler):
    """/static/... from static/, as the wallboard serves it, and /bench/... from bench/web/;
    nothing else."""

    def translate_path(self, path: str) -> str:
        for prefix, root in (("/static/", web_dir("static")), ("/bench/", BENCH_WEB)):
            if path.startswith(prefix):
                self.directory = str(root)
                return super().translate_path(path[len(prefix) - 1:])
        return str(BENCH_WEB / "missing")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StaticHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def headline(r: dict[str, Any]) -> str:
    """One line of a run's figures (the page's JSON has them all)."""
    if "frame_ms" not in r:
        return json.dumps(r)
    lt, fr, tk = r["long_tasks"], r["frame_ms"], r["tick_frame_ms"]
    parts = [
        f"{r.get('layout', 'tab')}: {r['agents']} agents, {r['calls']} calls",
        f"long tasks {lt['count']} (mean {lt['mean']:.0f} ms, max {lt['max']:.0f} ms; "
        f"after 1 s: {r.get('long_tasks_steady', {}).get('count', '?')})",
        f"{r['changes_per_second']}/{r['changes_per_second_target']} changes/s",
        f"script: frame p50 {fr['p50']:.1f} p99 {fr['p99']:.1f} ms, "
        f"tick frame p50 {tk['p50']:.1f} max {tk['max']:.1f} ms",
    ]
    if "frame_total_ms" in r:
        ft, tt = r["frame_total_ms"], r["tick_frame_total_ms"]
        parts.append(f"with rendering: frame p50 {ft['p50']:.1f} p99 {ft['p99']:.1f} ms, "
                     f"tick frame p50 {tt['p50']:.1f} max {tt['max']:.1f} ms")
    if "frame_interval_ms" in r:
        fi = r["frame_interval_ms"]
        parts.append(f"frame interval p95 {fi['p95']:.1f} p99 {fi['p99']:.1f} max {fi['max']:.1f} ms")
    if "change_to_frame_ms" in r:
        wait = r["change_to_frame_ms"]
        parts.append(f"change to frame p50 {wait['p50']:.0f} p99 {wait['p99']:.0f} ms")
    parts.append(f"initial {r['initial_render_ms']} ms")
    if r.get("check"):
        parts.append("check " + ", ".join(f"{k} {v}" for k, v in r["check"].items()))
    if r.get("page_errors"):
        parts.append(f"PAGE ERRORS {r['page_errors']}")
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--no-polls", action="store_true", help="no source updates: the board goes stale 5 s in")
    parser.add_argument("--scroll", default="", choices=["", "agents"],
                        help="agents: the agent grid fills the screen (the most tiles and timers on it)")
    parser.add_argument("--layout", default="tab", choices=["tab", "kiosk"], help="kiosk: the TV's layout")
    parser.add_argument("--trace", help="save a Chrome trace of the first run to this file")
    parser.add_argument("--sort", default="state", choices=["state", "name", "ext"])
    parser.add_argument("--json", action="store_true", help="print each run's full JSON")
    args = parser.parse_args(argv)
    with static_server() as url:
        for i in range(args.runs):
            r = measure(url, agents=args.agents, rate=args.rate, seconds=args.seconds,
                        sort=args.sort, polls=not args.no_polls, scroll=args.scroll, layout=args.layout,
                        trace=args.trace if i == 0 else None)
            print(f"run {i + 1}: {headline(r)}", flush=True)
            if args.json:
                print(json.dumps(r, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
