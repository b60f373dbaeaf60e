"""The web UI in a real headless Chromium, against a real ``daglake serve``: what a user sees
when they open the link, press "Run now", open a task and the catalog."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api_support import Server, copy_products
from tests.browser import browser, get, screenshot, serve  # noqa: F401 - fixture

RUN_TIMEOUT = 90_000  # ms: a cold run of the example on a busy 2-core machine
UI_TIMEOUT = 20_000

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def products(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The products example (plus tests/api_support.py's gate task, which holds a run on
    request) served for the module's tests."""
    with serve(copy_products(tmp_path_factory.mktemp("ui"))) as server:
        yield server


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:  # noqa: F811 - the fixture above
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT)
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(UI_TIMEOUT)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _tasks(server: Server) -> list[str]:
    return [node["name"] for node in get(server, "/graph")["nodes"] if node["kind"] != "check"]


def test_run_now_turns_every_task_green_then_shows_sql_rows_and_catalog(products: Server, page: Any) -> None:
    from playwright.sync_api import expect

    tasks = _tasks(products)
    page.goto(f"{products.url}/?token={products.token}")
    expect(page).to_have_url(f"{products.url}/")  # the token went into a cookie
    expect(page.locator("#graph")).to_have_attribute("data-rendered-nodes", str(len(tasks)))
    expect(page.locator("#tasks li.task")).to_have_count(len(tasks))
    expect(page.locator("#project")).to_have_text("products")

    with page.expect_response(lambda r: r.url.endswith("/run") and r.request.method == "POST") as posted:
        page.get_by_role("button", name=re.compile("Run now")).click()
    assert posted.value.status == 202, posted.value.text()
    run_id = posted.value.json()["run_id"]

    expect(page.locator(f"#runs li[data-run='{run_id}']")).to_have_attribute("data-state", "success", timeout=RUN_TIMEOUT)
    expect(page.locator("#tasks li.task[data-state='success']")).to_have_count(len(tasks))
    expect(page.locator("#legend [data-state='success']")).to_have_attribute("data-count", str(len(tasks)))
    expect(page.locator("#run-status")).to_contain_text(run_id)
    states = page.evaluate("() => Object.fromEntries(window.daglakeGraph.nodes().map((n) => [n.id(), n.data('state')]))")
    assert states == {name: "success" for name in tasks}
    screenshot(page, "products-run-success")

    rows = {task["name"]: task["rows"] for task in get(products, f"/runs/{run_id}")["tasks"]}
    page.locator("#tasks li.task[data-task='final.products']").click()
    panel = page.locator("#task-panel")
    expect(panel.locator("#task-title")).to_have_text("final.products")
    expect(panel.locator("#task-sql")).to_contain_text("SELECT")
    expect(panel.locator("#task-sql")).to_contain_text((products.root / "res/final/products.sql").read_text().splitlines()[-1].strip())
    expect(panel.locator("[data-fact='rows']")).to_have_text(str(rows["final.products"]))
    expect(panel.locator("[data-fact='state']")).to_have_text("success")
    expect(panel.locator("table.checks tbody tr")).not_to_have_count(0)
    expect(panel.locator("#task-log")).not_to_be_empty()
    screenshot(page, "products-task-panel")

    page.locator("#legend [data-state='success']").click()  # narrow to one state, and back
    expect(page.locator("#tasks li.task")).to_have_count(len(tasks))
    page.locator("#legend [data-state='failed']").click()
    expect(page.locator("#tasks li.task")).to_have_count(0)
    page.locator("#legend [data-state='failed']").click()
    expect(page.locator("#tasks li.task")).to_have_count(len(tasks))

    page.get_by_role("tab", name="Catalog").click()
    expect(page.locator("tr.table-row[data-table='final.products']")).to_be_visible()
    expect(page.locator("tr.table-row[data-table='final.products'] td.rows")).to_have_text(str(rows["final.products"]))
    screenshot(page, "products-catalog")
    page.locator("tr.table-row[data-table='tmp.variants'] button").click()  # built by: to the graph
    expect(page.locator("#graph-view")).to_be_visible()
    expect(page.locator("#task-title")).to_have_text("tmp.variants")


def test_a_run_in_progress_shows_live_and_a_second_run_now_is_refused(products: Server, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(f"{products.url}/?token={products.token}")
    expect(page.locator("#graph")).to_have_attribute("data-rendered-nodes", str(len(_tasks(products))))
    run_now = page.get_by_role("button", name=re.compile("Run now"))
    with products.holding():  # the run waits in task tmp.gate until the block ends
        run_now.click()
        run_id = products.wait_gate()
        expect(page.locator("li.task[data-task='tmp.gate']")).to_have_attribute("data-state", "running")
        expect(page.locator("#run-status")).to_contain_text(run_id)
        expect(page.locator("#run-status .badge")).to_have_text("running")
        gate = page.locator("#timeline g.bar-row[data-task='tmp.gate']")
        expect(gate).to_have_attribute("data-state", "running")  # its bar grows with the clock
        width = gate.locator("rect.bar").get_attribute("width")
        assert width is not None
        expect(gate.locator("rect.bar")).not_to_have_attribute("width", width)
        with page.expect_response(lambda r: r.url.endswith("/run") and r.request.method == "POST") as refused:
            run_now.click()
        assert refused.value.status == 409
        expect(page.locator("#toast")).to_contain_text(run_id)
        screenshot(page, "run-in-progress")
    expect(page.locator(f"#runs li[data-run='{run_id}']")).to_have_attribute("data-state", "success", timeout=RUN_TIMEOUT)
    expect(page.locator("li.task[data-task='tmp.gate']")).to_have_attribute("data-state", "success")


def test_without_the_token_run_now_says_how_to_sign_in(products: Server, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(products.url + "/")  # no ?token=: no cookie
    expect(page.locator("#graph")).to_have_attribute("data-rendered-nodes", str(len(_tasks(products))))
    with page.expect_response(lambda r: r.url.endswith("/run") and r.request.method == "POST") as posted:
        page.get_by_role("button", name=re.compile("Run now")).click()
    assert posted.value.status == 401
    expect(page.locator("#toast")).to_contain_text("Not signed in")


def test_states_still_update_by_polling_when_the_event_stream_is_down(products: Server, page: Any) -> None:
    from playwright.sync_api import expect

    page.route("**/events", lambda route: route.abort())
    page.goto(f"{products.url}/?token={products.token}")
    expect(page.locator("#live")).to_have_attribute("data-mode", "polling")
    with page.expect_response(lambda r: r.url.endswith("/run") and r.request.method == "POST") as posted:
        page.get_by_role("button", name=re.compile("Run now")).click()
    run_id = posted.value.json()["run_id"]
    expect(page.locator(f"#runs li[data-run='{run_id}']")).to_have_attribute("data-state", "success", timeout=RUN_TIMEOUT)
    expect(page.locator("#run-status")).to_contain_text(run_id)
    # an ordinary run skips the seeds whose tables exist, so appended rows survive
    done = page.locator("#tasks li.task[data-state='success'], #tasks li.task[data-state='skipped']")
    expect(done).to_have_count(len(_tasks(products)))


def _finished_runs(server: Server, at_least: int) -> list[str]:
    """Ids of the project's runs, newest first, running more first if needed."""
    with server.client() as client:
        listed = client.get("/runs").json()["runs"]
        for _ in range(at_least - len(listed)):
            assert client.post("/run", params={"wait": "true"}).status_code == 200
        return [run["run_id"] for run in client.get("/runs").json()["runs"]]


def test_a_past_run_can_be_shown_and_following_live_comes_back(products: Server, page: Any) -> None:
    from playwright.sync_api import expect

    newest, older = _finished_runs(products, 2)[:2]
    page.goto(products.url + "/")
    expect(page.locator("#run-status")).to_contain_text(newest)
    expect(page.locator("#follow")).to_be_hidden()
    page.locator(f"#runs li[data-run='{older}']").click()
    expect(page.locator("#run-status")).to_contain_text(older)
    expect(page.locator(f"#runs li[data-run='{older}']")).to_have_class(re.compile("selected"))
    page.locator("#tasks li.task[data-task='tmp.variants']").click()
    expect(page).to_have_url(f"{products.url}/#run={older}&task=tmp.variants")
    page.reload()  # the address keeps the run and the task shown
    expect(page.locator("#run-status")).to_contain_text(older)
    expect(page.locator("#task-title")).to_have_text("tmp.variants")
    page.get_by_role("button", name="Follow live").click()
    expect(page.locator("#run-status")).to_contain_text(newest)
    expect(page.locator("#follow")).to_be_hidden()
    expect(page).to_have_url(f"{products.url}/#task=tmp.variants")


def write_project(root: Path, size: int, seed: int = 6) -> list[str]:
    """A project of SIZE SQL files: 20 seeds, then tasks each reading 1-3 of the 40 before."""
    rng = random.Random(seed)
    names: list[str] = []
    for i in range(size):
        if i < 20:
            path, name = root / "seeds" / f"source_{i:03d}.sql", f"raw.source_{i:03d}"
            sql = f"CREATE OR REPLACE TABLE `{name}` AS SELECT {i} AS id, 'x' AS label"
        else:
            layer = "staging" if i < size // 2 else "marts"
            path, name = root / layer / f"model_{i:03d}.sql", f"{layer}.model_{i:03d}"
            recent = names[max(0, i - 40) : i]
            upstream = rng.sample(recent, k=min(len(recent), rng.randint(1, 3)))
            sql = "\nUNION ALL ".join(f"SELECT * FROM {table}" for table in upstream)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql + "\n", encoding="utf-8")
        names.append(name)
    return names


def test_two_hundred_tasks_all_render_and_can_be_found(tmp_path: Path, page: Any) -> None:
    from playwright.sync_api import expect

    names = write_project(tmp_path / "big", 200)
    with serve(tmp_path / "big") as server:
        page.goto(server.url + "/")
        expect(page.locator("#graph")).to_have_attribute("data-rendered-nodes", "200")
        expect(page.locator("#tasks li.task")).to_have_count(200)
        expect(page.locator("#timeline-pane")).to_be_hidden()  # no run yet: the graph has the room
        drawn = page.evaluate("() => window.daglakeGraph.nodes().map((n) => n.id()).sort()")
        assert drawn == sorted(names)
        # fitted to the screen: every node lies inside the visible graph area
        inside = page.evaluate(
            """() => { const cy = window.daglakeGraph, w = cy.width(), h = cy.height();
                return cy.nodes().every((n) => { const b = n.renderedBoundingBox();
                  return b.x1 >= 0 && b.y1 >= 0 && b.x2 <= w && b.y2 <= h; }); }"""
        )
        assert inside
        screenshot(page, "two-hundred-tasks")

        page.locator("#search").fill("model_150")
        expect(page.locator("#tasks li.task")).to_have_count(1)
        page.locator("#search").press("Enter")
        expect(page.locator("#task-title")).to_have_text("marts.model_150")
        expect(page.locator("#task-sql")).to_contain_text("SELECT")

        page.get_by_role("tab", name="Catalog").click()  # never run: nothing built yet
        expect(page.locator("#catalog-note")).to_contain_text("no warehouse yet")


def test_a_failed_task_shows_red_with_its_error_line_and_blocks_its_downstream(tmp_path: Path, page: Any) -> None:
    from playwright.sync_api import expect

    root = tmp_path / "broken"
    for relative, sql in {
        "seeds/people.sql": "CREATE OR REPLACE TABLE `raw.people` AS SELECT 1 AS id, 'Ada' AS name",
        "staging/names.sql": "SELECT id,\n  nickname\nFROM `raw.people` -- <img src=x onerror=\"window.pwned=1\">",
        "marts/report.sql": "SELECT COUNT(*) AS n FROM staging.names",
    }.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(sql + "\n", encoding="utf-8")
    with serve(root) as server:
        page.goto(f"{server.url}/?token={server.token}")
        expect(page.locator("#graph")).to_have_attribute("data-rendered-nodes", "3")
        page.get_by_role("button", name=re.compile("Run now")).click()
        expect(page.locator("#tasks li.task[data-task='staging.names']")).to_have_attribute("data-state", "failed", timeout=RUN_TIMEOUT)
        expect(page.locator("#tasks li.task[data-task='marts.report']")).to_have_attribute("data-state", "upstream_failed")
        expect(page.locator("#tasks li.task[data-task='raw.people']")).to_have_attribute("data-state", "success")
        expect(page.locator("#legend [data-state='failed']")).to_have_attribute("data-count", "1")
        # the blocked task never started: no bar; the failed one is red on the timeline
        bars = page.locator("#timeline g.bar-row")
        expect(bars).to_have_count(2)
        expect(page.locator("#timeline g.bar-row[data-task='staging.names']")).to_have_attribute("data-state", "failed")
        page.locator("#tasks li.task[data-task='staging.names']").click()
        error = page.locator("#task-panel .error-box")
        expect(error).to_contain_text("staging/names.sql:2")
        expect(error).to_contain_text("nickname")
        expect(error.locator(".error-line")).to_have_text("2 |   nickname")
        # text from files reaches the page as text, never as markup
        expect(page.locator("#task-sql")).to_contain_text('<img src=x onerror="window.pwned=1">')
        expect(page.locator("#task-panel img")).to_have_count(0)
        assert page.evaluate("() => window.pwned") is None
        screenshot(page, "failed-task")


def test_a_project_with_problems_lists_them_instead_of_a_graph(tmp_path: Path, page: Any) -> None:
    from playwright.sync_api import expect

    root = tmp_path / "invalid"
    (root / "staging").mkdir(parents=True)
    (root / "staging" / "broken.sql").write_text("SELEC 1 AS x\n", encoding="utf-8")
    with serve(root) as server:
        page.goto(f"{server.url}/?token={server.token}")
        problems = page.locator("#problems")
        expect(problems).to_be_visible()
        expect(problems.locator("pre")).to_contain_text("staging/broken.sql:1:")
        expect(problems.locator("pre")).to_contain_text("syntax error")
        expect(page.locator("#project")).to_have_text("invalid")


FLAKY_TASK = '''
import daglake


@daglake.task("staging.flaky", inputs=["staging.people"])
def flaky(ctx):
    marker = ctx.project_root / "tried"
    if not marker.exists():
        marker.write_text("1")
        raise RuntimeError("the upstream API timed out (first try)")
    ctx.metric("people_seen", 3)
    return ctx.sql("SELECT count(*) AS n FROM staging.people")
'''


def test_the_panel_shows_failing_check_rows_retried_attempts_and_metrics(tmp_path: Path, page: Any) -> None:
    from playwright.sync_api import expect

    root = tmp_path / "people"
    files = {
        "daglake.toml": '[run]\nretry_delay = 0.05\n\n[tasks."staging/flaky.py"]\nretries = 1\n\n'
        '[checks."staging.people"]\nnot_null = ["email"]\n',
        "seeds/people.sql": "CREATE OR REPLACE TABLE `raw.people` AS SELECT * FROM (VALUES (1, 'a@x.org'), (2, NULL)) AS t(id, email)",
        "staging/people.sql": "SELECT id, email FROM raw.people",
        "staging/flaky.py": FLAKY_TASK,
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text + "\n", encoding="utf-8")
    with serve(root) as server:
        page.goto(f"{server.url}/?token={server.token}")
        run_now = page.get_by_role("button", name=re.compile("Run now"))
        run_now.click()  # the check on staging.people fails and blocks staging.flaky
        expect(page.locator("li.task[data-task='staging.flaky']")).to_have_attribute("data-state", "upstream_failed", timeout=RUN_TIMEOUT)
        expect(page.locator("#legend [data-state='check-failed']")).to_have_attribute("data-count", "1")
        page.locator("li.task[data-task='staging.people']").click()
        check = page.locator("#task-panel table.checks")
        expect(check.locator("tr[data-check='staging.people: not_null(email)']")).to_have_attribute("data-state", "failed")
        expect(check.locator("tr.detail")).to_contain_text('"id":2')

        (root / "daglake.toml").write_text(files["daglake.toml"].replace('"email"', '"id"') + "\n", encoding="utf-8")
        run_now.click()  # now staging.flaky runs, fails once and succeeds on its retry
        expect(page.locator("li.task[data-task='staging.flaky']")).to_have_attribute("data-state", "success", timeout=RUN_TIMEOUT)
        page.locator("li.task[data-task='staging.flaky']").click()
        panel = page.locator("#task-panel")
        expect(panel.locator("[data-fact='attempts']")).to_have_text("2")
        expect(panel.locator("table.attempts tr.detail")).to_contain_text("the upstream API timed out")
        expect(panel.locator(".metrics")).to_contain_text("people_seen")
        screenshot(page, "retried-task")


def test_a_run_failing_only_on_checks_shows_them_failed_and_warned(tmp_path: Path, page: Any) -> None:
    """One error check and one warn check failing: the legend counts them, the task whose new
    version the error check refused (not published) is drawn failed (red), the warned one is
    outlined amber, and both are listed as such."""
    from playwright.sync_api import expect

    root = tmp_path / "checked"
    files = {
        "daglake.toml": '[checks."staging.people"]\nnot_null = ["email"]\n\n'
        '[checks."staging.orders"]\nunique = ["person"]\nwarn = ["unique"]\n\n'
        '[checks."staging.fine"]\nnot_null = ["id"]\n',
        "staging/people.sql": "SELECT * FROM (VALUES (1, 'a@x.org'), (2, NULL)) AS t(id, email)",
        "staging/orders.sql": "SELECT * FROM (VALUES (1, 1), (2, 1)) AS t(id, person)",
        "staging/fine.sql": "SELECT 1 AS id",
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text + "\n", encoding="utf-8")
    with serve(root) as server:
        page.goto(f"{server.url}/?token={server.token}")
        page.get_by_role("button", name=re.compile("Run now")).click()
        legend = page.locator("#legend")
        expect(legend.locator("[data-state='check-failed']")).to_have_attribute("data-count", "1", timeout=RUN_TIMEOUT)
        expect(legend.locator("[data-state='check-warned']")).to_have_attribute("data-count", "1", timeout=RUN_TIMEOUT)
        expect(page.locator("#run-status .badge")).to_have_text("failed", timeout=RUN_TIMEOUT)
        for task in ("staging.orders", "staging.fine"):  # built; staging.people's audit refused it
            expect(page.locator(f"li.task[data-task='{task}']")).to_have_attribute("data-state", "success")
        expect(page.locator("li.task[data-task='staging.people']")).to_have_attribute("data-state", "failed")
        expect(page.locator("li.task[data-task='staging.people'] .check-mark.failed")).to_have_text("check failed")
        expect(page.locator("li.task[data-task='staging.orders'] .check-mark.warned")).to_have_text("check warned")
        expect(page.locator("li.task[data-task='staging.fine'] .check-mark")).to_have_count(0)
        # the colours change with a 200 ms transition: wait until the drawn fill settles
        page.wait_for_function(
            """() => window.daglakeGraph.getElementById('staging.people').style('background-color')
                 === 'rgb(254,202,202)' && window.daglakeGraph.getElementById('staging.fine')
                 .style('background-color') === 'rgb(187,247,208)'""",
            timeout=RUN_TIMEOUT,
        )
        drawn = page.evaluate(
            """() => Object.fromEntries(window.daglakeGraph.nodes().map((n) => [n.id(),
                 [n.data('checks'), n.style('background-color'), n.style('outline-color')]]))"""
        )
        assert drawn["staging.people"] == ["failed", "rgb(254,202,202)", "rgb(220,38,38)"]  # drawn failed
        assert drawn["staging.orders"][0] == "warned" and drawn["staging.orders"][2] == "rgb(217,119,6)"
        assert drawn["staging.fine"][:2] == ["", "rgb(187,247,208)"]  # green: its check passed

        legend.locator("[data-state='check-failed']").click()  # narrows the list to that task
        expect(page.locator("#tasks li.task")).to_have_count(1)
        expect(page.locator("#tasks li.task")).to_have_attribute("data-task", "staging.people")
        screenshot(page, "failing-checks")


def _critical_path(bars: dict[str, tuple[float, float]], upstream: dict[str, list[str]]) -> list[str]:
    """The tasks that set the run's end: the last to end, then back through the upstream task
    that ended last, as the timeline outlines them."""
    path: list[str] = []
    current: str | None = max(bars, key=lambda name: bars[name][1])
    while current is not None and current not in path:
        path.append(current)
        before = [name for name in upstream[current] if name in bars]
        current = max(before, key=lambda name: bars[name][1]) if before else None
    return path


def test_the_timeline_shows_each_task_of_a_finished_run_in_start_order_beside_run_durations(
    products: Server, page: Any
) -> None:
    from playwright.sync_api import expect

    newest, older = _finished_runs(products, 2)[:2]
    listed = get(products, "/runs")["runs"]
    tasks = [t for t in get(products, f"/runs/{newest}")["tasks"] if t["kind"] != "check"]
    ran = sorted((t for t in tasks if t["started_at"]), key=lambda t: (t["started_at"], t["name"]))
    assert len(ran) == len(_tasks(products))  # every task of the example ran
    nodes = get(products, "/graph")["nodes"]
    kinds = {node["name"]: node["kind"] for node in nodes}
    upstream = {n["name"]: [u for u in n["upstream"] if kinds[u] != "check"] for n in nodes}

    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(f"{products.url}/#run={newest}")
    rows = page.locator("#timeline g.bar-row")
    expect(rows).to_have_count(len(ran))
    assert rows.evaluate_all("rows => rows.map(row => row.dataset.task)") == [t["name"] for t in ran]
    assert rows.evaluate_all("rows => rows.map(row => row.dataset.state)") == [t["state"] for t in ran]
    starts = page.locator("#timeline rect.bar").evaluate_all("bars => bars.map(bar => +bar.getAttribute('x'))")
    assert starts == sorted(starts)

    bars = {t["name"]: (t["started_at"], t["started_at"] + t["duration"]) for t in ran}
    outlined = page.locator("#timeline g.bar-row.critical").evaluate_all("rows => rows.map(row => row.dataset.task)")
    assert sorted(outlined) == sorted(_critical_path(bars, upstream))
    final = next(t for t in ran if t["name"] == "final.products")
    hover = page.locator("#timeline g.bar-row[data-task='final.products'] > title").text_content()
    assert f"{final['rows']:,} rows" in hover and "success" in hover

    run_bars = page.locator("#durations rect.run-bar")
    expect(run_bars).to_have_count(min(20, len(listed)))
    shown = page.locator("#durations rect.run-bar.shown")
    expect(shown).to_have_attribute("data-run", newest)
    heights = {bar["data-run"]: bar for bar in run_bars.evaluate_all(
        "bars => bars.map(bar => ({'data-run': bar.dataset.run, height: +bar.getAttribute('height')}))"
    )}
    longest = max(listed[:20], key=lambda run: run["duration"])
    assert max(heights.values(), key=lambda bar: bar["height"])["data-run"] == longest["run_id"]
    screenshot(page, "timeline-1024")
    page.locator("#timeline g.bar-row[data-task='final.products']").click()  # a bar opens its task
    expect(page.locator("#task-title")).to_have_text("final.products")
    expect(page.locator("#timeline g.bar-row.selected")).to_have_attribute("data-task", "final.products")

    page.keyboard.press("Escape")  # at 1024 px the task panel lies over the durations
    expect(page.locator("#task-panel")).to_be_hidden()
    page.locator(f"#durations rect.run-bar[data-run='{older}']").click()  # a bar opens its run
    expect(page.locator("#run-status")).to_contain_text(older)
    expect(shown).to_have_attribute("data-run", older)


def test_a_tasks_columns_show_their_lineage_on_the_graph(products: Server, page: Any) -> None:
    """The task panel lists the table's columns; picking one lists what it is computed from
    and what uses it, and lights those tasks up on the graph (the others fade)."""
    from playwright.sync_api import expect

    page.goto(f"{products.url}/?token={products.token}")
    page.locator("#tasks li.task[data-task='tmp.category_tree']").click()
    columns = page.locator("#task-columns button")
    expect(columns.first).to_have_text("category_id")
    page.locator("#task-columns button[data-column='tmp.category_tree.category_name']").click()
    lineage = page.locator("#column-lineage")
    expect(lineage).to_contain_text("raw.categories.name")
    expect(lineage).to_contain_text("final.products.category")
    screenshot(page, "column-lineage")
    classes = page.evaluate(
        "() => Object.fromEntries(window.daglakeGraph.nodes().map((n) => [n.id(), n.classes().filter((c) => c.startsWith('lineage'))]))"
    )
    assert classes["raw.categories"] == ["lineage-up"]
    assert classes["final.products"] == ["lineage-down"]
    assert classes["tmp.category_tree"] == []  # the open task itself
    assert classes["raw.suppliers"] == ["lineage-dim"]
    page.locator("#task-columns button[data-column='tmp.category_tree.category_name']").click()  # again: off
    expect(lineage).to_have_count(0)
    assert page.evaluate("() => window.daglakeGraph.nodes('.lineage-dim').length") == 0
