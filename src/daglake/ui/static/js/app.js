// The page's state and wiring: which run is shown, which task is open, what the live feed says.
import { api, LiveFeed } from "./api.js";
import { $, badge, h, replace } from "./dom.js";
import { GraphView } from "./graph.js";
import { renderCatalog, renderLegend, renderRuns, renderTask, renderTaskList } from "./panels.js";

const DONE = new Set(["success", "skipped", "warned", "failed", "upstream_failed", "not_started"]);

const ui = {
  graphData: { nodes: [], edges: [] },
  nodes: [], // the nodes drawn
  showChecks: false,
  nodeByName: new Map(),
  tableOwner: new Map(), // output table → task name, to hang checks on their task
  initialStates: new Map(), // from GET /graph: the latest run's state per task
  runs: [],
  runId: null,
  run: null,
  tasks: new Map(), // name → TaskRun of the run shown
  follow: true, // show each new run as it starts
  selected: null,
  sources: new Map(),
  log: undefined,
  logAttempt: null,
  tables: null,
  filter: "",
  view: "graph",
  renderQueued: false,
  fetching: new Set(), // run ids being read
};

const graph = new GraphView($("#graph"), { onSelect: (name) => selectTask(name) });
window.daglakeGraph = graph.cy; // for the browser tests and the curious, from the console

function nodeState(name) {
  if (ui.runId === null) return ui.initialStates.get(name) || "none";
  const task = ui.tasks.get(name);
  return task ? task.state : "none";
}

function statesByNode() {
  return new Map(ui.nodes.map((node) => [node.name, nodeState(node.name)]));
}

function checksOf(name) {
  const node = ui.nodeByName.get(name);
  if (!node) return [];
  if (node.kind === "check") return ui.tasks.has(name) ? [ui.tasks.get(name)] : [];
  const outputs = new Set(node.outputs || [name]);
  return [...ui.tasks.values()].filter((task) => task.kind === "check" && task.check && outputs.has(task.check.table));
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
  const failedChecks = new Set();
  for (const task of ui.tasks.values()) {
    if (task.kind === "check" && task.check && ["failed", "warned"].includes(task.state)) {
      const owner = ui.tableOwner.get(task.check.table);
      if (owner) failedChecks.add(owner);
    }
  }
  graph.markCheckFailures(failedChecks);
  renderLegend($("#legend"), [...states.values()]);
  renderTaskList($("#tasks"), ui.nodes, states, ui.filter, ui.selected, (name) => selectTask(name, { center: true }));
  renderRuns($("#runs"), runsWithShownRun(), ui.runId, (id) => pickRun(id));
  renderStatus(states);
  if (ui.selected) renderPanel();
}

// The list comes from GET /runs; the run shown is fresher (live events), so it wins.
function runsWithShownRun() {
  if (!ui.run) return ui.runs;
  const counts = {};
  for (const task of ui.tasks.values()) counts[task.state] = (counts[task.state] || 0) + 1;
  const { tasks, ...record } = ui.run;
  const shown = { ...record, counts };
  const listed = ui.runs.some((run) => run.run_id === shown.run_id);
  return listed ? ui.runs.map((run) => (run.run_id === shown.run_id ? { ...run, ...shown } : run)) : [shown, ...ui.runs];
}

function renderStatus(states) {
  const status = $("#run-status");
  if (!ui.run) {
    replace(status, h("span", { class: "muted" }, "no run yet"));
    return;
  }
  const done = [...states.values()].filter((state) => DONE.has(state)).length;
  replace(
    status,
    badge(ui.run.state),
    h("span", { class: "mono", title: "run id" }, ui.run.run_id),
    h("span", { class: "muted", dataset: { progress: `${done}/${ui.nodes.length}` } }, `${done}/${ui.nodes.length} tasks done`),
  );
  $("#follow").hidden = ui.follow;
}

function renderPanel() {
  const node = ui.nodeByName.get(ui.selected);
  if (!node) return;
  const shown = {
    node,
    taskRun: ui.tasks.get(node.name) || null,
    checks: checksOf(node.name),
    source: ui.sources.get(node.name),
    log: ui.log,
    runId: ui.runId,
  };
  // Other tasks' events must not repaint the panel: it would lose its scroll and selection.
  const key = JSON.stringify(shown);
  const body = $("#task-body");
  if (body.panelKey === key) return;
  body.panelKey = key;
  renderTask(body, {
    ...shown,
    upstream: graph.upstream(node.name),
    downstream: graph.downstream(node.name),
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

const PROGRESS = { pending: 0, running: 1 }; // any other state is an end: 2

function progress(task) {
  return task.state in PROGRESS ? PROGRESS[task.state] : 2;
}

async function showRun(id, tries = 10) {
  if (ui.fetching.has(id)) return; // the events of a run not yet loaded would each ask again
  ui.fetching.add(id);
  let record;
  try {
    record = await api.run(id);
  } catch (error) {
    if (error.status !== 404) throw error;
    record = null; // not recorded yet: try again shortly
  } finally {
    ui.fetching.delete(id);
  }
  if (record === null) {
    if (tries > 0) setTimeout(() => showRun(id, tries - 1).catch(report), 500);
    return;
  }
  const same = ui.runId === id;
  if (!same) {
    ui.log = undefined;
    ui.logAttempt = null;
  }
  ui.runId = id;
  ui.run = record;
  const tasks = new Map((record.tasks || []).map((task) => [task.name, task]));
  if (same) {
    // Live events may be ahead of the record just read: never step a task back.
    for (const [name, task] of ui.tasks) {
      const read = tasks.get(name);
      if (!read || progress(task) > progress(read)) tasks.set(name, task);
    }
  }
  ui.tasks = tasks;
  scheduleRender();
  if (ui.selected) loadLog();
  // A run being recorded may not list its tasks yet: read it again until it does.
  const unlisted = ui.nodes.some((node) => !tasks.has(node.name));
  if (record.state === "running" && unlisted && tries > 0) {
    setTimeout(() => ui.runId === id && showRun(id, tries - 1).catch(report), 700);
  }
}

async function loadRuns() {
  ui.runs = (await api.runs(50)).runs || [];
  scheduleRender();
}

function pickRun(id) {
  ui.follow = false;
  showRun(id).catch(report);
}

async function selectTask(name, { center = false } = {}) {
  const changed = name !== ui.selected;
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
  const runId = ui.runId;
  if (!name || !runId || !ui.tasks.has(name)) return;
  try {
    const log = await api.log(runId, name, ui.logAttempt);
    if (ui.selected === name && ui.runId === runId) ui.log = log;
  } catch {
    if (ui.selected === name) ui.log = null;
  }
  scheduleRender();
}

// Live feed: a run starting or ending, a task starting or finishing.
function onRunEvent(event) {
  if (!event.run_id) return;
  if (event.state === "running") {
    if (ui.follow && event.run_id !== ui.runId) showRun(event.run_id).catch(report);
  } else if (event.run_id === ui.runId) {
    showFinishedRun(event.run_id).catch(report);
    ui.tables = null; // the catalog changed
    if (ui.view === "catalog") showCatalog();
  }
  loadRuns().catch(report);
}

// The end event may overtake the run's final record in the state store: re-read a few times.
async function showFinishedRun(id, tries = 10) {
  await showRun(id);
  if (ui.runId === id && ui.run.state === "running" && tries > 0) {
    setTimeout(() => showFinishedRun(id, tries - 1).catch(report), 500);
  } else {
    await loadRuns();
  }
}

function onTaskEvent(event) {
  if (!event.run_id || !event.name) return;
  if (event.run_id !== ui.runId) {
    if (ui.follow) showRun(event.run_id).catch(report);
    return;
  }
  const before = ui.tasks.get(event.name);
  ui.tasks.set(event.name, { ...before, ...event });
  if (ui.run && ui.run.state !== "running") ui.run = { ...ui.run, state: "running" };
  if (event.name === ui.selected && DONE.has(event.state)) loadLog();
  scheduleRender();
}

async function poll() {
  const health = await api.health();
  const active = health.run_in_progress;
  if (active && ui.follow && active !== ui.runId) {
    await showRun(active);
    await loadRuns();
  } else if (ui.runId && (active === ui.runId || (ui.run && ui.run.state === "running"))) {
    await showRun(ui.runId);
    if (active !== ui.runId) await loadRuns();
  }
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
    ui.follow = true;
    toast(`Run ${started.run_id} started`, "info");
    await showRun(started.run_id);
    await loadRuns();
  } catch (error) {
    if (error.status === 409) {
      const id = error.detail.run_id;
      toast(`${error.message}${id && !error.message.includes(id) ? ` (run ${id})` : ""}`);
      if (id) {
        ui.follow = true;
        showRun(id).catch(report);
      }
    } else if (error.status === 401) {
      toast("Not signed in: open the link with ?token=… that `daglake serve` printed.");
    } else {
      report(error);
    }
  } finally {
    button.disabled = false;
  }
}

function followLive() {
  ui.follow = true;
  api
    .health()
    .then((health) => showRun(health.run_in_progress || (ui.runs[0] && ui.runs[0].run_id)))
    .catch(report);
}

async function showCatalog() {
  if (ui.tables === null) {
    replace($("#catalog"), h("p", { class: "muted" }, "loading…"));
    ui.tables = (await api.tables()).tables || [];
  }
  renderCatalog($("#catalog"), ui.tables, ui.filter, (name) => {
    setView("graph");
    const owner = ui.tableOwner.get(name) || name;
    if (ui.nodeByName.has(owner)) selectTask(owner, { center: true });
  });
}

function setView(view) {
  ui.view = view;
  $("#graph-view").hidden = view !== "graph";
  $("#catalog-view").hidden = view !== "catalog";
  $("#tab-graph").classList.toggle("active", view === "graph");
  $("#tab-catalog").classList.toggle("active", view === "catalog");
  $("#tab-graph").setAttribute("aria-selected", String(view === "graph"));
  $("#tab-catalog").setAttribute("aria-selected", String(view === "catalog"));
  if (view === "catalog") showCatalog().catch(report);
  else graph.cy.resize();
}

function onSearch() {
  ui.filter = $("#search").value;
  const shown = renderTaskList($("#tasks"), ui.nodes, statesByNode(), ui.filter, ui.selected, (name) => selectTask(name, { center: true }));
  graph.highlight(ui.filter.trim() ? new Set(shown) : null);
  if (ui.view === "catalog" && ui.tables) showCatalog().catch(report);
  return shown;
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
      const [first] = onSearch();
      if (first) selectTask(first, { center: true });
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

async function start() {
  wire();
  const [graphData, runs] = await Promise.all([api.graph(), api.runs(50)]);
  ui.graphData = graphData;
  for (const node of graphData.nodes) {
    if (node.kind !== "check") for (const table of node.outputs || []) ui.tableOwner.set(table, node.name);
  }
  ui.initialStates = new Map(graphData.nodes.map((node) => [node.name, node.state || "none"]));
  ui.runs = runs.runs || [];
  replace($("#project"), graphData.project || "");
  document.title = `${graphData.project} · daglake`;
  $("#toggle-checks").hidden = !graphData.nodes.some((node) => node.kind === "check");
  setGraph(false);
  if (ui.runs.length) await showRun(ui.runs[0].run_id);
  new LiveFeed({ onRun: onRunEvent, onTask: onTaskEvent, onMode: setLiveMode, poll }).start();
}

start().catch(report);
