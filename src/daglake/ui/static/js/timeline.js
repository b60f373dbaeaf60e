// A run over time, in plain SVG: one bar per task from its start to its end (the critical
// path outlined), and beside it the durations of the last runs.
import { count, duration, stateLabel } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const ROW = 18; // px per task
const LABEL = 150; // px for the task names
const AXIS = 18;
const RECENT_RUNS = 20;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(key, String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function tip(text) {
  const title = document.createElementNS(SVG, "title");
  title.textContent = text; // hover text: never HTML
  return title;
}

// Round steps (1 ms … 2 h) so that the axis has about `wanted` ticks.
function tickStep(span, wanted) {
  const steps = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  return steps.find((step) => span / step <= wanted) || Math.ceil(span / wanted / 3600) * 3600;
}

function axisLabel(seconds) {
  if (seconds === 0) return "0";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${Number(seconds.toFixed(1))}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60 ? ` ${Math.round(seconds % 60)}s` : ""}`;
  return `${Math.floor(seconds / 3600)}h${seconds % 3600 ? ` ${Math.round((seconds % 3600) / 60)}m` : ""}`;
}

// The chain of tasks that set the run's end: from the task ending last, back through the
// upstream task that ended last before it started.
export function criticalPath(bars, upstreamOf) {
  const byName = new Map(bars.map((bar) => [bar.name, bar]));
  const path = new Set();
  let current = bars.reduce((last, bar) => (!last || bar.end > last.end ? bar : last), null);
  while (current && !path.has(current.name)) {
    path.add(current.name);
    const before = upstreamOf(current.name)
      .map((name) => byName.get(name))
      .filter(Boolean);
    current = before.reduce((last, bar) => (!last || bar.end > last.end ? bar : last), null);
  }
  return path;
}

// The tasks of the run shown that started, in the order they started.
export function taskBars(tasks, now) {
  return tasks
    .filter((task) => task.started_at)
    .map((task) => ({
      name: task.name,
      state: task.state,
      rows: task.rows,
      start: task.started_at,
      end: task.started_at + (task.duration ?? (task.state === "running" ? Math.max(0, now - task.started_at) : 0)),
      duration: task.duration,
    }))
    .sort((a, b) => a.start - b.start || a.name.localeCompare(b.name));
}

export class TimelineView {
  // container: the timeline's element; onPick(name): a bar was clicked.
  constructor(container, { onPick }) {
    Object.assign(this, { container, onPick });
    this.key = null;
  }

  render(tasks, upstreamOf, selected = null) {
    const now = Date.now() / 1000;
    const bars = taskBars(tasks, now);
    const width = Math.max(260, this.container.clientWidth);
    const key = JSON.stringify([bars, width, selected]);
    if (key === this.key) return;
    this.key = key;
    this.container.dataset.bars = String(bars.length);
    if (!bars.length) {
      this.container.replaceChildren(emptyNote("No task of this run has started yet."));
      return;
    }
    const origin = bars[0].start;
    const span = Math.max(0.001, Math.max(...bars.map((bar) => bar.end)) - origin);
    const plot = width - LABEL - 12;
    const x = (t) => LABEL + ((t - origin) / span) * plot;
    const height = bars.length * ROW + 4;
    const critical = bars.length > 1 ? criticalPath(bars, upstreamOf) : new Set();
    const chart = svg("svg", { width, height, class: "timeline-svg", role: "img", "aria-label": "Task timeline" });
    // the axis stays in view over a long list of tasks
    const axis = svg("svg", { width, height: AXIS, class: "timeline-svg timeline-axis", "aria-hidden": "true" });
    const step = tickStep(span, Math.max(2, Math.floor(plot / 90)));
    for (let t = 0; t <= span + 1e-9; t += step) {
      chart.append(svg("line", { x1: x(origin + t), x2: x(origin + t), y1: 0, y2: height, class: "tick" }));
      const label = svg("text", { x: x(origin + t), y: AXIS - 5, class: "tick-label", "text-anchor": t === 0 ? "start" : "middle" });
      label.textContent = axisLabel(Number(t.toFixed(6)));
      axis.append(label);
    }
    bars.forEach((bar, index) => {
      const y = index * ROW;
      const label = svg("text", { x: LABEL - 8, y: y + ROW / 2 + 4, class: "bar-label", "text-anchor": "end" });
      label.textContent = bar.name.length > 20 ? `…${bar.name.slice(-19)}` : bar.name; // fits LABEL
      const spent = bar.duration === null || bar.duration === undefined ? "running" : duration(bar.duration);
      const rows = bar.rows === null || bar.rows === undefined ? "" : ` · ${count(bar.rows)} rows`;
      const onPath = critical.has(bar.name);
      const group = svg(
        "g",
        { class: `bar-row${onPath ? " critical" : ""}${bar.name === selected ? " selected" : ""}`, "data-task": bar.name, "data-state": bar.state },
        tip(`${bar.name}\n${stateLabel(bar.state)} · ${spent}${rows}${onPath ? "\non the critical path" : ""}`),
        svg("rect", { x: 0, y, width, height: ROW, class: "bar-hit" }),
        label,
        svg("rect", {
          x: x(bar.start),
          y: y + 3,
          width: Math.max(2, x(bar.end) - x(bar.start)),
          height: ROW - 6,
          rx: 2,
          class: `bar st-${bar.state}`,
        }),
      );
      group.addEventListener("click", () => this.onPick(bar.name));
      chart.append(group);
    });
    this.container.replaceChildren(axis, chart);
  }
}

function emptyNote(text) {
  const note = document.createElement("p");
  note.className = "muted timeline-empty";
  note.textContent = text;
  return note;
}

// The last runs' durations, oldest on the left, the run shown marked.
export function renderDurations(container, runs, shownId, onPick) {
  const now = Date.now() / 1000;
  const recent = runs.slice(0, RECENT_RUNS).reverse();
  container.dataset.runs = String(recent.length);
  if (!recent.length) {
    container.replaceChildren(emptyNote("No runs yet."));
    return;
  }
  const seconds = (run) => run.duration ?? Math.max(0, now - run.started_at);
  const width = Math.max(160, container.clientWidth);
  // repainting under the pointer would drop its hover text: only when something changed
  const key = JSON.stringify([recent.map((run) => [run.run_id, run.state, Math.round(seconds(run))]), shownId, width]);
  if (container.paintedKey === key) return;
  container.paintedKey = key;
  const longest = Math.max(0.001, ...recent.map(seconds));
  const height = 110;
  const top = 16;
  const bottom = height - 4;
  const slot = (width - 8) / Math.max(recent.length, 8);
  const chart = svg("svg", { width, height, class: "durations-svg", role: "img", "aria-label": "Run durations" });
  const scale = svg("text", { x: 4, y: 11, class: "tick-label" });
  scale.textContent = `longest ${duration(longest)}`;
  chart.append(scale, svg("line", { x1: 4, x2: width - 4, y1: bottom, y2: bottom, class: "tick" }));
  recent.forEach((run, index) => {
    const barHeight = Math.max(2, (seconds(run) / longest) * (bottom - top));
    const bar = svg(
      "rect",
      {
        x: 4 + index * slot + slot * 0.15,
        y: bottom - barHeight,
        width: slot * 0.7,
        height: barHeight,
        rx: 2,
        class: `run-bar st-${run.state}${run.run_id === shownId ? " shown" : ""}`,
        "data-run": run.run_id,
      },
      tip(`${run.run_id}\n${stateLabel(run.state)} · ${run.duration === null || run.duration === undefined ? "running" : duration(run.duration)}`),
    );
    bar.addEventListener("click", () => onPick(run.run_id));
    chart.append(bar);
  });
  container.replaceChildren(chart);
}
