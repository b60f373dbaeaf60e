// Which run the page shows and what its tasks are doing, kept current from the live feed, the
// run's record and the run history.
import { api } from "./api.js";
import { problemLine } from "./dom.js";

export const DONE = new Set(["success", "skipped", "warned", "failed", "upstream_failed", "not_started"]);
const PROGRESS = { pending: 0, running: 1 }; // any other state is an end: 2

function progress(task) {
  return task.state in PROGRESS ? PROGRESS[task.state] : 2;
}

// A run's error: a string in its record, {code, message} when it was refused before it began.
export function errorText(error) {
  if (!error) return "";
  if (typeof error !== "object") return String(error);
  const first = (error.problems || []).slice(0, 2).map(problemLine);
  return [error.message || error.code, ...first].join("; ");
}

export class RunTracker {
  // nodes(): the task names drawn; changed(): repaint; shown(switched): a run was (re)read;
  // taskEnded(name); runEnded(); report(error).
  constructor({ nodes, changed, shown, taskEnded, runEnded, report }) {
    Object.assign(this, { nodes, changed, shown, taskEnded, runEnded, report });
    this.runs = []; // GET /runs, newest first
    this.runId = null; // the run shown
    this.run = null; // its record
    this.tasks = new Map(); // name → TaskRun of the run shown
    this.follow = true; // show each new run as it starts
    this.intent = undefined; // the run last asked for: an answer about another one comes too late
    this.fetching = new Set();
    this.lastEvent = 0;
    this.lastRunsRead = 0;
  }

  async show(id, tries = 10) {
    if (!id || this.fetching.has(id)) return; // the events of a run not yet loaded would each ask
    if (this.follow) this.intent = id;
    this.fetching.add(id);
    let record;
    try {
      record = await api.run(id);
    } catch (error) {
      if (error.status !== 404) throw error;
      record = null; // not recorded yet: try again shortly
    } finally {
      this.fetching.delete(id);
    }
    if (this.intent !== undefined && this.intent !== id) return; // a run picked meanwhile wins
    if (record === null) {
      if (tries > 0) setTimeout(() => this.show(id, tries - 1).catch(this.report), 500);
      return;
    }
    const same = this.runId === id;
    this.runId = id;
    this.run = record;
    const tasks = new Map((record.tasks || []).map((task) => [task.name, task]));
    if (same) {
      // Live events may be ahead of the record just read: never step a task back.
      for (const [name, task] of this.tasks) {
        const read = tasks.get(name);
        if (!read || progress(task) > progress(read)) tasks.set(name, task);
      }
    }
    this.tasks = tasks;
    this.shown(!same);
    this.changed();
    // A run being recorded may not list its tasks yet: read it again until it does.
    const unlisted = this.nodes().some((name) => !tasks.has(name));
    if (record.state === "running" && unlisted && tries > 0) {
      setTimeout(() => this.runId === id && this.show(id, tries - 1).catch(this.report), 700);
    }
  }

  // The end event may overtake the run's final record in the state store: re-read a few times.
  async showFinished(id, tries = 10) {
    await this.show(id);
    if (this.runId === id && this.run.state === "running" && tries > 0) {
      setTimeout(() => this.showFinished(id, tries - 1).catch(this.report), 500);
    } else {
      await this.loadRuns();
    }
  }

  async loadRuns() {
    this.lastRunsRead = Date.now();
    this.runs = (await api.runs(50)).runs || [];
    this.changed();
  }

  pick(id) {
    this.follow = false;
    this.intent = id;
    this.show(id).catch(this.report);
  }

  onRunEvent(event) {
    if (!event.run_id) return;
    this.lastEvent = Date.now();
    if (event.state === "running") {
      if (this.follow && event.run_id !== this.runId) this.show(event.run_id).catch(this.report);
    } else {
      if (event.run_id === this.runId) this.showFinished(event.run_id).catch(this.report);
      if (event.error && (event.run_id === this.runId || this.follow)) this.report(new Error(errorText(event.error)));
      this.runEnded();
    }
    this.loadRuns().catch(this.report);
  }

  onTaskEvent(event) {
    if (!event.run_id || !event.name) return;
    this.lastEvent = Date.now();
    if (event.run_id !== this.runId) {
      if (this.follow) this.show(event.run_id).catch(this.report);
      return;
    }
    this.tasks.set(event.name, { ...this.tasks.get(event.name), ...event });
    if (this.run && this.run.state !== "running") this.run = { ...this.run, state: "running" };
    if (DONE.has(event.state)) this.taskEnded(event.name);
    this.changed();
  }

  // Without the event stream: the server's current run and the one shown, every tick.
  async poll() {
    const active = (await api.health()).run_in_progress;
    if (active && this.follow && active !== this.runId) {
      await this.show(active);
      await this.loadRuns();
    } else if (this.runId && (active === this.runId || (this.run && this.run.state === "running"))) {
      await this.show(this.runId);
      if (active !== this.runId) await this.loadRuns();
    }
  }

  // The stream tells of runs started over HTTP; a `daglake run` in a terminal only shows in
  // the history. Look at it now and then, and at a run that has gone quiet.
  async watchHistory() {
    const now = Date.now();
    if (this.run && this.run.state === "running" && now - this.lastEvent > 3000) await this.show(this.runId);
    if (now - this.lastRunsRead < 10000) return;
    await this.loadRuns();
    const newest = this.runs[0];
    const newer = newest && newest.run_id !== this.runId && (!this.run || newest.started_at > this.run.started_at);
    if (this.follow && newer) await this.show(newest.run_id);
  }

  // The history as listed, with the run shown fresher (live events) than GET /runs read it.
  history() {
    if (!this.run) return this.runs;
    const counts = {};
    for (const task of this.tasks.values()) counts[task.state] = (counts[task.state] || 0) + 1;
    const { tasks: _tasks, ...record } = this.run;
    const shown = { ...record, counts };
    const listed = this.runs.some((run) => run.run_id === shown.run_id);
    return listed ? this.runs.map((run) => (run.run_id === shown.run_id ? { ...run, ...shown } : run)) : [shown, ...this.runs];
  }

  // A task's state in the run shown; before any run is read, the latest from GET /graph.
  stateOf(name, initial) {
    if (this.runId === null) return initial || "none";
    const task = this.tasks.get(name);
    if (task) return task.state;
    // a run still validating the project has not listed its tasks yet: they are queued
    return this.run && this.run.state === "running" && this.tasks.size === 0 ? "pending" : "none";
  }
}
