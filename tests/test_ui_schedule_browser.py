"""The UI header in a real headless Chromium against a real ``daglake serve`` of a scheduled
project: the schedule and the next run, as the server's ``GET /schedule`` computes them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser import browser, get, serve  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


def test_the_header_shows_the_schedule_and_the_next_run(tmp_path: Path, browser: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    root = tmp_path / "scheduled"
    (root / "res" / "tmp").mkdir(parents=True)
    (root / "daglake.toml").write_text(
        '[project]\nname = "scheduled"\nschedule = "0 6 * * 1"\ntimezone = "Europe/Paris"\n', encoding="utf-8"
    )
    (root / "res" / "tmp" / "week.sql").write_text("SELECT CAST(@ds AS DATE) AS week", encoding="utf-8")
    with serve(root) as server:
        listing = get(server, "/schedule?next=3")
        upcoming = listing["next"][0]
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(f"{server.url}/?token={server.token}")
            header = page.locator("#schedule")
            expect(header).to_be_visible(timeout=20_000)
            expect(header).to_contain_text("0 6 * * 1")
            expect(header).to_contain_text("· next ")
            expect(header).to_contain_text(f"({upcoming['logical_date']})")
            expect(header).to_have_attribute("data-next-run", upcoming["runs_at"])
            expect(header).to_have_attribute("title", re.compile("Europe/Paris"))
        finally:
            context.close()
        assert errors == []
