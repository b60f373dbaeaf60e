// The lists and panels around the graph: runs, tasks, one task's details, the catalog.
import { badge, count, duration, h, highlightSql, problemLine, replace, STATES, stateLabel, when } from "./dom.js";
import { errorText } from "./runs.js";

// What matters first in a run's one-line summary: what went wrong, then what is going on.
const COUNT_ORDER = ["failed", "upstream_failed", "warned", "running", "pending", "not_started", "success", "skipped"];

export function renderRuns(list, runs, selectedId, onPick) {
  if (!runs.length) {
    replace(list, h("li", { class: "empty" }, "No runs yet. Press “Run now”."));
    return;
  }
  replace(
    list,
    runs.map((run) => {
      const counts = Object.entries(run.counts || {})
        .sort(([a], [b]) => COUNT_ORDER.indexOf(a) - COUNT_ORDER.indexOf(b))
        .map(([state, n]) => `${n} ${stateLabel(state)}`)
        .join(" · ");
      return h(
        "li",
        {
          class: run.run_id === selectedId ? "run selected" : "run",
          dataset: { run: run.run_id, state: run.state },
          tabindex: 0,
          onclick: () => onPick(run.run_id),
          onkeydown: (event) => event.key === "Enter" && onPick(run.run_id),
        },
        h("span", { class: `dot st-${run.state}`, title: stateLabel(run.state) }),
        h(
          "div",
          { class: "run-main" },
          h("div", { class: "run-id" }, run.run_id),
          h("div", { class: "run-meta" }, `${when(run.started_at)} · ${run.state === "running" ? "running" : duration(run.duration)} · ${run.trigger || ""}`),
          counts ? h("div", { class: "run-counts" }, counts) : null,
          run.error ? h("div", { class: "run-error", title: errorText(run.error) }, errorText(run.error)) : null,
        ),
      );
    }),
  );
}

// The legend's check items filter by the worst check of a task's table, not its state.
const CHECK_ITEMS = [
  ["check-failed", "failed", "failed checks"],
  ["check-warned", "warned", "warned checks"],
];

function inFilter(node, states, filter) {
  if (!filter.state) return true;
  const byCheck = CHECK_ITEMS.find(([key]) => key === filter.state);
  if (byCheck) return (filter.checks || new Map()).get(node.name) === byCheck[1];
  return (states.get(node.name) || "none") === filter.state;
}

function checkMark(worst) {
  if (!worst) return null;
  const text = worst === "failed" ? "check failed" : "check warned";
  return h("span", { class: `check-mark ${worst}`, title: `a data-quality ${text}` }, text);
}

export function renderTaskList(list, nodes, states, filter, selected, onPick) {
  const needle = filter.text.trim().toLowerCase();
  const checks = filter.checks || new Map();
  const shown = nodes.filter(
    (node) =>
      (!needle || node.name.toLowerCase().includes(needle) || node.path.toLowerCase().includes(needle)) &&
      inFilter(node, states, filter),
  );
  const names = shown.map((node) => node.name);
  const key = names.join("\n");
  if (list.taskKey === key) {
    // Same tasks as drawn: update states in place, keeping scroll position and focus.
    for (const item of list.children) {
      const state = states.get(item.dataset.task) || "none";
      const worst = checks.get(item.dataset.task) || "";
      item.classList.toggle("selected", item.dataset.task === selected);
      if ((item.dataset.checks || "") !== worst) {
        item.dataset.checks = worst;
        item.querySelector(".check-mark")?.remove();
        const mark = checkMark(worst);
        if (mark) item.append(mark);
      }
      if (item.dataset.state === state) continue;
      item.dataset.state = state;
      item.firstChild.className = `dot st-${state}`;
      item.firstChild.title = stateLabel(state);
    }
    return names;
  }
  list.taskKey = key;
  replace(
    list,
    shown.map((node) => {
      const state = states.get(node.name) || "none";
      return h(
        "li",
        {
          class: node.name === selected ? "task selected" : "task",
          dataset: { task: node.name, state, checks: checks.get(node.name) || "" },
          title: node.path,
          tabindex: 0,
          onclick: () => onPick(node.name),
          onkeydown: (event) => event.key === "Enter" && onPick(node.name),
        },
        h("span", { class: `dot st-${state}`, title: stateLabel(state) }),
        h("span", { class: "task-name" }, node.name),
        checkMark(checks.get(node.name)),
      );
    }),
  );
  return names;
}

// The state legend with counts; a state clicked narrows the task list and the graph to it.
// Failed (error) and warned checks come first, counted, when the run has any: clicked, they
// narrow the list to the tasks whose tables they check.
export function renderLegend(legend, nodeStates, active, onPick, checkCounts = { failed: 0, warned: 0 }) {
  const tally = new Map();
  for (const state of nodeStates) tally.set(state, (tally.get(state) || 0) + 1);
  const checks = CHECK_ITEMS.filter(([, severity]) => checkCounts[severity]).map(([key, severity, label]) =>
    h(
      "button",
      {
        class: ["legend-item", "checks", severity, key === active ? "active" : ""].filter(Boolean).join(" "),
        dataset: { state: key, count: checkCounts[severity] },
        "aria-pressed": String(key === active),
        title: key === active ? "Show every task" : `Show only the tasks whose ${label}`,
        onclick: () => onPick(key === active ? null : key),
      },
      h("span", { class: `swatch outlined ${severity}` }),
      label,
      h("b", {}, String(checkCounts[severity])),
    ),
  );
  replace(
    legend,
    checks,
    STATES.map(([state, label]) => {
      const n = tally.get(state) || 0;
      const classes = ["legend-item", n ? "" : "zero", state === active ? "active" : ""].filter(Boolean).join(" ");
      return h(
        "button",
        {
          class: classes,
          dataset: { state, count: n },
          "aria-pressed": String(state === active),
          title: state === active ? "Show every task" : `Show only the ${label} tasks`,
          onclick: () => onPick(state === active ? null : state),
        },
        h("span", { class: `swatch st-${state}` }),
        label,
        h("b", {}, String(n)),
      );
    }),
  );
}

// The task panel: what the graph knows, the latest run's record, checks, SQL and the log tail.
export function renderTask(panel, { node, taskRun, checks, source, log, upstream, downstream, runId, onPick, onAttempt, columns = [], column = null, onColumn = () => {} }) {
  const state = taskRun ? taskRun.state : "none";
  const attempts = taskRun ? taskRun.attempts || [] : [];
  const facts = [
    ["State", badge(state)],
    ["Kind", node.kind],
    ["Duration", duration(taskRun && taskRun.duration)],
    ["Rows", count(taskRun && taskRun.rows)],
    ["Attempts", String(attempts.length)],
    ["Started", when(taskRun && taskRun.started_at)],
  ];
  const links = (names) =>
    names.length ? names.map((name) => h("button", { class: "chip", onclick: () => onPick(name) }, name)) : h("span", { class: "muted" }, "none");
  replace(
    panel,
    h("header", { class: "panel-head" }, h("h2", { id: "task-title" }, node.name), h("div", { class: "muted mono" }, node.path)),
    h("dl", { class: "facts" }, facts.map(([key, value]) => h("div", {}, h("dt", {}, key), h("dd", { dataset: { fact: key.toLowerCase() } }, value)))),
    taskRun && taskRun.error
      ? h("div", { class: "error-box" }, h("b", {}, taskRun.location || "error"), errorLine(node, taskRun.location, source), h("pre", {}, taskRun.error))
      : null,
    taskRun && taskRun.reason ? h("p", { class: "muted" }, taskRun.reason) : null,
    h("h3", {}, "Depends on"),
    h("div", { class: "chips" }, links(upstream)),
    h("h3", {}, "Used by"),
    h("div", { class: "chips" }, links(downstream)),
    node.outputs && node.outputs.length > 1 ? [h("h3", {}, "Outputs"), h("div", { class: "mono" }, node.outputs.join(", "))] : null,
    columns.length ? columnList(columns, column, onColumn) : null,
    h("h3", {}, node.kind === "python" ? "Source" : "SQL"),
    sourceBlock(node, source),
    checks.length ? [h("h3", {}, `Checks (${checks.length})`), checkTable(checks)] : null,
    metricsList(taskRun),
    attempts.length ? [h("h3", {}, "Attempts"), attemptTable(attempts, log, onAttempt)] : null,
    runId && taskRun && (attempts.length || taskRun.state === "running") ? [h("h3", {}, logTitle(log)), logBlock(log)] : null,
  );
}

// The task's columns; the picked one lists what it is computed from and what uses it.
function columnList(columns, column, onColumn) {
  const short = (name) => name.split(".").slice(2).join(".");
  const chips = columns.map((name) =>
    h("button", { class: name === column?.name ? "chip picked" : "chip", dataset: { column: name }, onclick: () => onColumn(name === column?.name ? null : name) }, short(name)),
  );
  const names = (list, none) => (list.length ? h("ul", { class: "mono lineage" }, list.map((name) => h("li", {}, name))) : h("p", { class: "muted" }, none));
  return [
    h("h3", {}, `Columns (${columns.length})`),
    h("div", { class: "chips", id: "task-columns" }, chips),
    column
      ? h(
          "div",
          { class: "column-lineage", id: "column-lineage" },
          h("h4", {}, "Computed from"),
          names(column.up, "no column: a literal, a seed or a source"),
          column.filters.length ? [h("h4", {}, "Rows decided by"), names(column.filters, "")] : null,
          h("h4", {}, "Used by"),
          names(column.down, "no column downstream"),
        )
      : null,
  ];
}

// The source line an error points at (``path:line``), quoted under the location.
function errorLine(node, location, source) {
  const match = /^(.*?):(\d+)(?::\d+)?$/.exec(location || "");
  if (!match || match[1] !== node.path || typeof source !== "string") return null;
  const text = source.split("\n")[Number(match[2]) - 1];
  return text === undefined ? null : h("pre", { class: "error-line" }, `${match[2]} | ${text}`);
}

// What a Python task counted with ctx.metric().
function metricsList(taskRun) {
  const metrics = Object.entries((taskRun && taskRun.metrics) || {});
  if (!metrics.length) return null;
  return [
    h("h3", {}, "Metrics"),
    h("dl", { class: "facts metrics" }, metrics.map(([key, value]) => h("div", {}, h("dt", {}, key), h("dd", {}, typeof value === "number" ? count(value) : typeof value === "object" ? JSON.stringify(value) : String(value))))),
  ];
}

function checkTable(checks) {
  return h(
    "table",
    { class: "grid checks" },
    h("thead", {}, h("tr", {}, h("th", {}, "Check"), h("th", {}, "Result"), h("th", {}, "Failing"))),
    h(
      "tbody",
      {},
      checks.map((check) => {
        const result = check.check || {};
        const name = check.name.includes(": ") ? check.name.slice(check.name.indexOf(": ") + 2) : check.name;
        const row = h(
          "tr",
          { dataset: { check: check.name, state: check.state } },
          h("td", { class: "mono", title: check.name }, name, result.severity === "warn" ? h("span", { class: "muted" }, " (warn)") : null),
          h("td", {}, badge(check.state)),
          h("td", { class: "num" }, result.failing === undefined ? "–" : count(result.failing)),
        );
        // What went wrong: the check's error, else a few of the failing rows.
        const sample = (result.sample || []).slice(0, 5).map((item) => (typeof item === "object" ? JSON.stringify(item) : String(item)));
        const detail = [result.error || check.error, ...(result.failing ? sample : [])].filter(Boolean).join("\n");
        return detail ? [row, h("tr", { class: "detail" }, h("td", { colspan: 3 }, h("pre", {}, detail)))] : row;
      }),
    ),
  );
}

function attemptTable(attempts, log, onAttempt) {
  const shown = log ? log.attempt : null;
  return h(
    "table",
    { class: "grid attempts" },
    h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "State"), h("th", {}, "Duration"), h("th", {}, "Rows"), h("th", {}, ""))),
    h(
      "tbody",
      {},
      attempts.map((attempt) => [
        h(
          "tr",
          {},
          h("td", {}, String(attempt.number)),
          h("td", {}, badge(attempt.state)),
          h("td", { class: "num" }, duration(attempt.duration)),
          h("td", { class: "num" }, count(attempt.rows)),
          h(
            "td",
            {},
            h("button", { class: attempt.number === shown ? "link current" : "link", onclick: () => onAttempt(attempt.number) }, "log"),
          ),
        ),
        attempt.job_ids && attempt.job_ids.length
          ? h("tr", { class: "detail jobs" }, h("td", { colspan: 5 }, `job${attempt.job_ids.length > 1 ? "s" : ""} ${attempt.job_ids.join(", ")}`))
          : null,
        // An earlier attempt's error is the only trace of why it was retried.
        attempts.length > 1 && attempt.error
          ? h("tr", { class: "detail" }, h("td", { colspan: 5 }, h("pre", {}, `${attempt.location ? `${attempt.location}: ` : ""}${attempt.error}`)))
          : null,
      ]),
    ),
  );
}

function sourceBlock(node, source) {
  if (source === undefined) return h("pre", { class: "code muted" }, "loading…");
  if (!source) return h("pre", { class: "code muted" }, "source unavailable");
  return h("pre", { class: "code", id: "task-sql", dataset: { lang: node.kind === "python" ? "python" : "sql" } }, node.kind === "python" ? source : highlightSql(source));
}

function logTitle(log) {
  return log && log.attempt ? `Log (attempt ${log.attempt}, last ${log.lines.length} lines)` : "Log";
}

function logBlock(log) {
  if (log === undefined) return h("pre", { class: "code log muted" }, "loading…");
  if (log === null || !log.lines.length) return h("pre", { class: "code log muted" }, "no log lines");
  return h("pre", { class: "code log", id: "task-log" }, log.lines.join("\n"));
}

// A project that does not validate has no graph: its problems go where the graph would be.
export function renderProblems(container, problems, onRetry) {
  replace(
    container,
    h("h2", {}, `The project has ${problems.length === 1 ? "a problem" : `${problems.length} problems`}`),
    h("pre", { class: "code" }, problems.map(problemLine).join("\n")),
    h("p", { class: "muted" }, "Fix the files, then "),
    h("button", { class: "primary", onclick: onRetry }, "Check again"),
  );
  container.hidden = false;
}
