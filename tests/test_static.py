"""What the real app serves under /static/: every module the board's scripts import,
and not the benchmark's page (bench/browser.py serves that itself, from bench/web/)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from wallboard.app import create_app
from wallboard.paths import web_dir
from wallboard.settings import defaults

IMPORT = re.compile(r"""\bfrom\s+['"]\./([\w.-]+\.js)['"]""")


def board_modules() -> set[str]:
    """main.js and every module it imports, and they import, from static/js/."""
    js = web_dir("static") / "js"
    seen: set[str] = set()
    todo = ["main.js"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += IMPORT.findall((js / name).read_text(encoding="utf-8"))
    return seen


async def test_the_app_serves_the_boards_modules_and_not_the_benchmark_page(tmp_path: Path) -> None:
    modules = board_modules()
    assert {"main.js", "store.js", "rules.js", "render.js", "tiles.js", "callrows.js"} <= modules
    s = defaults().with_values(auth={"mode": "none"}, webhook={"register": False},
                               storage={"path": str(tmp_path / "wb.db")})
    async with httpx.AsyncClient() as http, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(s, http_client=http)), base_url="http://testserver") as c:
        for name in sorted(modules):
            assert (await c.get(f"/static/js/{name}")).status_code == 200, name
        for path in ("/static/bench.html", "/static/js/bench.js", "/bench/bench.html"):
            assert (await c.get(path)).status_code == 404, path
