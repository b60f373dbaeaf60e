"""The web UI's files: every one the page loads is shipped in the wheel, served with the right
type, reachable only inside the static folder, and none comes from the internet."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from daglake import ui

REPO = Path(__file__).resolve().parents[1]
STATIC = REPO / "src" / "daglake" / "ui" / "static"
OWN_FILES = ["index.html", "app.css", *(f"js/{p.name}" for p in sorted((STATIC / "js").glob("*.js")))]


def _referenced(relative: str) -> set[str]:
    """Static files that RELATIVE loads: /ui/static/… URLs and relative module imports."""
    text = (STATIC / relative).read_text(encoding="utf-8")
    found = set(re.findall(r"/ui/static/([\w./-]+)", text))
    base = Path(relative).parent
    for target in re.findall(r"""(?:import|from)\s*["'](\.{1,2}/[^"']+)["']""", text):
        found.add((base / target).as_posix().replace("js/../", ""))
    return found


def test_every_file_the_page_loads_exists_and_is_served() -> None:
    seen: set[str] = set()
    todo = ["index.html"]
    while todo:
        relative = todo.pop()
        if relative in seen:
            continue
        seen.add(relative)
        assert ui.asset(relative) is not None, f"{relative} is referenced but not shipped"
        if relative.endswith((".html", ".js")):
            todo.extend(_referenced(relative))
    assert {"vendor/cytoscape.esm.min.mjs", "vendor/cytoscape-dagre.min.mjs", "app.css"} <= seen


def test_the_wheel_ships_every_static_file() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["daglake.ui"]
    shipped = {p.relative_to(STATIC.parent).as_posix() for p in STATIC.rglob("*") if p.is_file()}
    missing = sorted(f for f in shipped if not any(fnmatch(f, pattern) for pattern in patterns))
    assert not missing, f"not in [tool.setuptools.package-data] daglake.ui: {missing}"


@pytest.mark.parametrize(
    ("relative", "media_type"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("js/app.js", "text/javascript; charset=utf-8"),
        ("vendor/cytoscape.esm.min.mjs", "text/javascript; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
def test_media_types(relative: str, media_type: str) -> None:
    assert ui.media_type(relative) == media_type


@pytest.mark.parametrize("relative", ["../__init__.py", "js/../../__init__.py", ".hidden", "", "js", "nope.js"])
def test_nothing_outside_the_static_folder_or_missing_is_served(relative: str) -> None:
    assert ui.asset(relative) is None


def test_no_cdn_no_html_injection() -> None:
    for relative in OWN_FILES:
        text = (STATIC / relative).read_text(encoding="utf-8")
        text = text.replace('"http://www.w3.org/2000/svg"', "")  # SVG's namespace name, never fetched
        assert not re.search(r"https?://", text), f"{relative} loads something from the internet"
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, f"{relative} inserts HTML"


def test_vendored_libraries_carry_their_licenses_and_versions() -> None:
    vendor = STATIC / "vendor"
    readme = (vendor / "README.md").read_text(encoding="utf-8")
    for name in ("cytoscape", "cytoscape-dagre", "dagre"):
        assert (vendor / f"LICENSE.{name}").is_file()
    assert 'Gh.version="3.34.4"' in (vendor / "cytoscape.esm.min.mjs").read_text(encoding="utf-8")
    assert "3.34.4" in readme and "4.0.1" in readme and "scripts/vendor-ui.sh" in readme


def test_mount_serves_the_page_and_its_assets_over_http() -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from fastapi import FastAPI

    app = FastAPI()
    ui.mount(app)

    async def fetch(*paths: str) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ui") as client:
            return [await client.get(path) for path in paths]

    missing = ["/ui/static/nope.js", "/ui/static/%2e%2e/__init__.py", "/ui/static/js/..%2f..%2f__init__.py"]
    # in a thread of its own: Playwright's sync API may hold this thread's event loop
    with ThreadPoolExecutor(1) as pool:
        page, module, *absent = pool.submit(asyncio.run, fetch("/", "/ui/static/js/app.js", *missing)).result()
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="/ui/static/js/app.js">' in page.text
    assert module.status_code == 200 and module.headers["content-type"].startswith("text/javascript")
    for path, answer in zip(missing, absent, strict=True):
        assert answer.status_code == 404, path
        assert answer.json()["error"]["code"] == "not_found"
