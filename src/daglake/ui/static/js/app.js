// The page's state and wiring: which run is shown, which task is open, what the live feed says.
import { api, LiveFeed } from "./api.js";
import { $, badge, duration, h, problemLine, replace } from "./dom.js";
import { GraphView } from "./graph.js";
import { ColumnLineage, tableOf } from "./lineage.js";
import { CatalogView } from "./catalog.js";
import { renderLegend, renderProblems, renderRuns, renderTask, renderTaskList } from "./panels.js";
import { DONE, RunTracker } from "./runs.js";
import { showSchedule } from "./schedule.js";
import { renderDurations, TimelineView } from "./timeline.js";

const ui = {
  graphData: { nodes: [], edges: [] },
  nodes: [], // the nodes drawn
  showChecks: false,
  nodeByName: new Map(),
  tableOwner: new Map(), // output table → task name, to hang checks on their task
  initialStates: new Map(), // from GET /graph: the latest run's state per task
  selected: null,
  lineage: null, // ColumnLineage of GET /lineage, loaded with the graph
  column: null, // the column picked in the task panel: its lineage shows on the graph
  sources: new Map(),
  log: undefined,
  logAttempt: null,
  filter: "", // the search box
  stateFilter: null, // a state picked in the legend
  view: "graph",
  renderQueued: false,
  started: false,
};

const graph = new GraphView($("#graph"), { onSelect: (name) => selectTask(name) });
window.daglakeGraph = graph.cy; // for the browser tests and the curious, from the console
const catalog = new CatalogView($("#catalog"), $("#catalog-note"), (task) => {
  setView("graph");
  if (ui.nodeByName.has(task)) selectTask(task, { center: true });
});
const timeline = new TimelineView($("#timeline"), { onPick: (name) => selectTask(name, { center: true }) });
const runs = new RunTracker({
  nodes: () => ui.nodes.map((node) => node.name),
  changed: () => scheduleRender(),
  shown: (switched) => {
    if (switched) {
      ui.log = undefined;
      ui.logAttempt = null;
    }
    if (ui.selected) loadLog();
  },
  taskEnded: (name) => name === ui.selected && loadLog(),
  runEnded: () => {
    if ($("#toast").classList.contains("info")) $("#toast").hidden = true; // "run started" is stale
    catalog.invalidate(); // the run changed the tables
    if (ui.view === "catalog") catalog.show(ui.filter).catch(report);
  },
  report: (error) => report(error),
});

function statesByNode() {
  return new Map(ui.nodes.map((node) => [node.name, runs.stateOf(node.name, ui.initialStates.get(node.name))]));
}

function checksOf(name) {
  const node = ui.nodeByName.get(name);
  if (!node) return [];
  if (node.kind === "check") return runs.tasks.has(name) ? [runs.tasks.get(name)] : [];
  const outputs = new Set(node.outputs || [name]);
  return [...runs.tasks.values()].filter((task) => task.kind === "check" && task.check && outputs.has(task.check.table));
}

// A run that failed only on checks has every task green: the checks that failed (error
// severity, "failed") or warned are counted, and the task building their table marked with
// the worse of them, so the graph, the list and the legend say so.
function failingChecks() {
  const owners = new Map(); // task name → "failed" | "warned"
  const counts = { failed: 0, warned: 0 };
  for (const task of runs.tasks.values()) {
    if (task.kind !== "check" || !task.check || !(task.state in counts)) continue;
    counts[task.state] += 1;
    const owner = ui.tableOwner.get(task.check.table);
    if (owner && owners.get(owner) !== "failed") owners.set(owner, task.state);
  }
  return { owners, counts };
}

// Coalesces the bursts of task events of a big run into one repaint per frame.
function scheduleRender() {
  if (ui.renderQueued) return;
  ui.renderQueued = true;
  requestAnimationFrame(() => {
    ui.renderQueued = false;
    renderAll();
  });
}

function renderAll() {
  const states = statesByNode();
  graph.setStates(states);
  const checks = failingChecks();
  graph.markChecks(checks.owners);
  const pickState = (state) => {
    ui.stateFilter = state;
    scheduleRender();
  };
  renderLegend($("#legend"), [...states.values()], ui.stateFilter, pickState, checks.counts);
  renderFilteredTasks(states, checks.owners);
  renderRuns($("#runs"), runs.history(), runs.runId, (id) => runs.pick(id));
  renderStatus(states);
  renderTimeline();
  if (ui.selected) renderPanel();
  writeAddress();
}

// The address keeps what is shown (a past run, a task, the catalog), so it can be shared.
function writeAddress() {
  if (!ui.started) return; // until start() has read it
  const params = new URLSearchParams();
  if (!runs.follow && runs.runId) params.set("run", runs.runId);
  if (ui.selected) params.set("task", ui.selected);
  if (ui.view !== "graph") params.set("view", ui.view);
  const hash = params.toString() ? `#${params}` : "";
  if (hash !== window.location.hash) window.history.replaceState(null, "", `${window.location.pathname}${hash}`);
}

function readAddress() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  return { run: params.get("run"), task: params.get("task"), view: params.get("view") };
}

function renderStatus(states) {
  const status = $("#run-status");
  if (!runs.run) {
    replace(status, h("span", { class: "muted" }, "no run yet"));
    return;
  }
  const inRun = [...states.values()].filter((state) => state !== "none"); // a run may select a few
  const done = inRun.filter((state) => DONE.has(state)).length;
  const total = inRun.length || ui.nodes.length;
  replace(
    status,
    badge(runs.run.state),
    h("span", { class: "mono", title: "run id" }, runs.run.run_id),
    h("span", { class: "muted", dataset: { progress: `${done}/${total}` } }, `${done}/${total} tasks done`),
  );
  $("#follow").hidden = runs.follow;
}

// The run shown over time, for the tasks drawn, and the durations of the last runs.
function renderTimeline() {
  if (ui.view !== "graph") return;
  const pane = $("#timeline-pane");
  const empty = !runs.run && !runs.runs.length; // before any run the graph keeps the room
  if (pane.hidden !== empty) {
    pane.hidden = empty;
    graph.cy.resize();
  }
  if (empty) return;
  const drawn = ui.nodes.map((node) => runs.tasks.get(node.name)).filter(Boolean);
  timeline.render(drawn, (name) => graph.upstream(name), ui.selected);
  const run = runs.run;
  const note = run ? `${run.run_id} · ${run.state === "running" ? "running" : duration(run.duration)}` : "";
  replace($("#timeline-note"), note);
  renderDurations($("#durations"), runs.history(), runs.runId, (id) => runs.pick(id));
}

function renderPanel() {
  const node = ui.nodeByName.get(ui.selected);
  if (!node) return;
  const shown = {
    node,
    taskRun: runs.tasks.get(node.name) || null,
    checks: checksOf(node.name),
    source: ui.sources.get(node.name),
    log: ui.log,
    runId: runs.runId,
  };
  // Other tasks' events must not repaint the panel: it would lose its scroll and selection.
  const key = JSON.stringify({ ...shown, column: ui.column, lineage: Boolean(ui.lineage) });
  const body = $("#task-body");
  if (body.panelKey === key) return;
  body.panelKey = key;
  renderTask(body, {
    ...shown,
    upstream: graph.upstream(node.name),
    downstream: graph.downstream(node.name),
    columns: ui.lineage ? node.outputs.flatMap((table) => ui.lineage.columns(table)) : [],
    column: ui.column,
    onColumn: (name) => pickColumn(name),
    onPick: (name) => selectTask(name, { center: true }),
    onAttempt: (number) => {
      ui.logAttempt = number;
      loadLog();
    },
  });
}

function toast(message, kind = "error") {
  const box = $("#toast");
  replace(box, message);
  box.className = `toast ${kind}`;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (box.hidden = true), kind === "info" ? 3000 : 8000);
}

// A column of the open task: its sources and dependents, listed and lit up on the graph.
function pickColumn(name) {
  if (!name || !ui.lineage) {
    ui.column = null;
    graph.showLineage(null);
    scheduleRender();
    return;
  }
  const up = ui.lineage.upstream(name);
  const down = ui.lineage.downstream(name);
  const filters = [...new Set(up.concat(name).flatMap((column) => ui.lineage.filters.get(column) || []))].sort();
  ui.column = { name, up, down, filters };
  const tasks = (columns) => new Set(columns.map((column) => ui.tableOwner.get(tableOf(column))).filter(Boolean));
  graph.showLineage({ task: ui.selected, up: tasks(up), down: tasks(down) });
  scheduleRender();
}

async function selectTask(name, { center = false } = {}) {
  const changed = name !== ui.selected;
  if (changed && ui.column) pickColumn(null);
  ui.selected = name;
  $("#task-panel").hidden = !name;
  $("main").classList.toggle("with-panel", Boolean(name));
  graph.cy.resize(); // before centring: the panel took part of the graph's width
  graph.select(name, { center });
  if (!name) {
    scheduleRender();
    return;
  }
  if (changed) {
    ui.log = undefined;
    ui.logAttempt = null;
  }
  scheduleRender();
  if (!ui.sources.has(name)) {
    api
      .task(name)
      .then((task) => ui.sources.set(name, task.source ?? null))
      .catch(() => ui.sources.set(name, null))
      .finally(scheduleRender);
  }
  loadLog();
}

async function loadLog() {
  const name = ui.selected;
  const runId = runs.runId;
  if (!name || !runId || !runs.tasks.has(name)) return;
  try {
    const log = await api.log(runId, name, ui.logAttempt);
    if (ui.selected === name && runs.runId === runId) ui.log = log;
  } catch {
    if (ui.selected === name) ui.log = null;
  }
  scheduleRender();
}

function setLiveMode(mode) {
  const live = $("#live");
  live.dataset.mode = mode;
  const [label, title] = {
    stream: ["live", "Updates arrive as server-sent events"],
    polling: ["polling", "Event stream unavailable: polling every 1.5 s"],
    offline: ["offline", "The server does not answer: retrying"],
  }[mode];
  replace(live, h("span", { class: "pulse" }), label);
  live.title = title;
}

async function runNow() {
  const button = $("#run-now");
  button.disabled = true;
  try {
    const started = await api.startRun();
    runs.follow = true;
    toast(`Run ${started.run_id} started`, "info");
    await runs.show(started.run_id);
    await runs.loadRuns();
  } catch (error) {
    if (error.status === 409) {
      const id = error.detail.run_id;
      toast(`${error.message}${id && !error.message.includes(id) ? ` (run ${id})` : ""}`);
      if (id) {
        runs.follow = true;
        runs.show(id).catch(report);
      }
    } else if (error.status === 401) {
      toast("Not signed in: open the link with ?token=… that `daglake serve` printed.");
    } else if (error.detail.problems) {
      const lines = error.detail.problems.slice(0, 3).map(problemLine);
      toast(`${error.message}: ${lines.join("; ")}${error.detail.problems.length > 3 ? "; …" : ""}`);
    } else {
      report(error);
    }
  } finally {
    button.disabled = false;
  }
}

function followLive() {
  runs.follow = true;
  api
    .health()
    .then((health) => runs.show(health.run_in_progress || (runs.runs[0] && runs.runs[0].run_id)))
    .catch(report);
}

function setView(view) {
  ui.view = view;
  $("#graph-view").hidden = view !== "graph";
  $("#catalog-view").hidden = view !== "catalog";
  $("#tab-graph").classList.toggle("active", view === "graph");
  $("#tab-catalog").classList.toggle("active", view === "catalog");
  $("#tab-graph").setAttribute("aria-selected", String(view === "graph"));
  $("#tab-catalog").setAttribute("aria-selected", String(view === "catalog"));
  // the task panel belongs to the graph: the catalog takes the whole width
  $("#task-panel").hidden = view !== "graph" || !ui.selected;
  $("main").classList.toggle("with-panel", view === "graph" && Boolean(ui.selected));
  if (view === "catalog") catalog.show(ui.filter).catch(report);
  else graph.cy.resize();
  scheduleRender();
}

// The task list and the graph's highlight follow the search box and the legend's state.
function renderFilteredTasks(states, checks = failingChecks().owners) {
  const filter = { text: ui.filter, state: ui.stateFilter, checks };
  const shown = renderTaskList($("#tasks"), ui.nodes, states, filter, ui.selected, (name) => selectTask(name, { center: true }));
  graph.highlight(ui.filter.trim() || ui.stateFilter ? new Set(shown) : null);
  return shown;
}

function onSearch() {
  ui.filter = $("#search").value;
  const shown = renderFilteredTasks(statesByNode());
  if (ui.view === "catalog" && catalog.tables) catalog.show(ui.filter).catch(report);
  return shown;
}

// Enter opens the task named exactly, else the one whose name ends (then starts) with it.
function bestMatch(names, needle) {
  const score = (name) => {
    const lower = name.toLowerCase();
    return lower === needle ? 0 : lower.endsWith(needle) ? 1 : lower.split(".").pop().startsWith(needle) ? 2 : 3;
  };
  return [...names].sort((a, b) => score(a) - score(b))[0];
}

function report(error) {
  console.error(error);
  toast(error && error.message ? error.message : String(error));
}

function wire() {
  $("#run-now").addEventListener("click", runNow);
  $("#follow").addEventListener("click", followLive);
  $("#fit").addEventListener("click", () => graph.fit());
  $("#toggle-checks").addEventListener("click", () => setGraph(!ui.showChecks));
  $("#zoom-in").addEventListener("click", () => graph.zoom(1.25));
  $("#zoom-out").addEventListener("click", () => graph.zoom(0.8));
  $("#close-panel").addEventListener("click", () => selectTask(null));
  $("#tab-graph").addEventListener("click", () => setView("graph"));
  $("#tab-catalog").addEventListener("click", () => setView("catalog"));
  const search = $("#search");
  search.addEventListener("input", onSearch);
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      const best = bestMatch(onSearch(), search.value.trim().toLowerCase());
      if (best) selectTask(best, { center: true });
    } else if (event.key === "Escape") {
      search.value = "";
      onSearch();
      search.blur();
    }
  });
  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "TEXTAREA"].includes(document.activeElement.tagName);
    if (event.key === "/" && !typing) {
      event.preventDefault();
      search.focus();
    } else if (event.key === "Escape" && !typing && ui.selected) {
      selectTask(null);
    }
  });
}

// GET /graph may list data-quality checks as nodes; they are hidden unless asked for, like
// `daglake graph` without --checks: the task panel lists them with their table's task.
function setGraph(showChecks) {
  ui.showChecks = showChecks;
  ui.nodes = ui.graphData.nodes.filter((node) => showChecks || node.kind !== "check");
  ui.nodeByName = new Map(ui.nodes.map((node) => [node.name, node]));
  $("#task-count").textContent = String(ui.nodes.length);
  $("#toggle-checks").classList.toggle("on", showChecks);
  graph.render({ ...ui.graphData, nodes: ui.nodes });
  if (ui.selected && !ui.nodeByName.has(ui.selected)) selectTask(null);
  renderAll();
}

function showProject(graphData) {
  ui.graphData = graphData;
  for (const node of graphData.nodes) {
    if (node.kind !== "check") for (const table of node.outputs || []) ui.tableOwner.set(table, node.name);
  }
  ui.initialStates = new Map(graphData.nodes.map((node) => [node.name, node.state || "none"]));
  setProjectName(graphData.project);
  $("#toggle-checks").hidden = !graphData.nodes.some((node) => node.kind === "check");
  setGraph(false);
}

function setProjectName(name) {
  replace($("#project"), name || "");
  document.title = name ? `${name} · daglake` : "daglake";
}

async function start() {
  const address = readAddress();
  wire();
  const updateSchedule = () => showSchedule($("#schedule")).catch(report);
  updateSchedule();
  setInterval(updateSchedule, 60_000);
  const [graphData] = await Promise.all([
    api.graph().catch((error) => {
      if (error.code !== "invalid_project") throw error;
      renderProblems($("#problems"), error.detail.problems || [], () => window.location.reload());
      api.health().then((health) => setProjectName(health.project), report);
      return null;
    }),
    runs.loadRuns().catch(report),
  ]);
  if (graphData) {
    showProject(graphData);
    api
      .lineage()
      .then((data) => {
        ui.lineage = new ColumnLineage(data);
        scheduleRender();
      })
      .catch(() => {}); // the graph works without it
  }
  if (address.run) {
    runs.follow = false;
    runs.intent = address.run;
  }
  const first = address.run || (runs.runs[0] && runs.runs[0].run_id);
  if (first) await runs.show(first);
  if (address.task && ui.nodeByName.has(address.task)) selectTask(address.task, { center: true });
  if (address.view === "catalog") setView("catalog");
  ui.started = true;
  new LiveFeed({
    onRun: (event) => runs.onRunEvent(event),
    onTask: (event) => runs.onTaskEvent(event),
    onMode: setLiveMode,
    poll: () => runs.poll(),
  }).start();
  setInterval(() => runs.watchHistory().catch(() => {}), 3000);
  setInterval(() => runs.run && runs.run.state === "running" && scheduleRender(), 1000); // bars grow
  new ResizeObserver(() => scheduleRender()).observe($("#timeline-pane"));
  // The log of a running task grows: follow its tail while the panel shows it.
  setInterval(() => {
    const task = ui.selected && runs.tasks.get(ui.selected);
    if (task && task.state === "running") loadLog();
  }, 2000);
}

start().catch(report);
