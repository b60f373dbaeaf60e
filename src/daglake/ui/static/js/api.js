// The HTTP API as the UI uses it: JSON reads, the one write (start a run) and the live feed.

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
    this.detail = error;
  }
}

async function request(method, path, options = {}) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", ...(options.headers || {}) },
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

const get = (path) => request("GET", path);
const part = (value) => encodeURIComponent(value);

export const api = {
  health: () => get("/health"),
  graph: () => get("/graph"),
  lineage: () => get("/lineage"),
  task: (name) => get(`/tasks/${part(name)}`),
  runs: (limit = 50) => get(`/runs?limit=${limit}`),
  run: (id) => get(`/runs/${part(id)}`),
  log: (id, task, attempt) => {
    const query = attempt ? `attempt=${attempt}&tail=200` : "tail=200";
    return get(`/runs/${part(id)}/tasks/${part(task)}/log?${query}`);
  },
  tables: () => get("/tables"),
  schedule: (count = 3) => get(`/schedule?next=${count}`),
  // The session cookie set by /?token=… authenticates; the header is the CSRF guard.
  startRun: () => request("POST", "/run", { headers: { "X-Daglake-UI": "1" } }),
};

// Server-sent events from /events; while the stream is down, polls /health and the run being
// watched instead, so the page keeps updating behind a proxy that drops long connections.
export class LiveFeed {
  constructor({ onRun, onTask, onMode, poll, pollInterval = 1500 }) {
    this.onRun = onRun;
    this.onTask = onTask;
    this.onMode = onMode;
    this.poll = poll;
    this.pollInterval = pollInterval;
    this.timer = null;
    this.source = null;
  }

  start() {
    if (typeof EventSource === "undefined") {
      this.startPolling();
      return;
    }
    const source = new EventSource("/events");
    this.source = source;
    source.addEventListener("open", () => {
      this.stopPolling();
      this.onMode("stream");
      this.poll(); // catch up on what happened while the stream was down
    });
    source.addEventListener("error", () => {
      this.startPolling();
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. a 4xx/5xx answer): try again later, polling meanwhile.
        setTimeout(() => this.source === source && this.start(), 10000);
      }
    });
    source.addEventListener("run", (event) => this.onRun(parse(event)));
    source.addEventListener("task", (event) => this.onTask(parse(event)));
  }

  startPolling() {
    if (this.timer !== null) return;
    this.onMode("polling");
    const tick = async () => {
      try {
        await this.poll();
        if (this.timer !== null) this.onMode("polling");
      } catch {
        this.onMode("offline"); // the server is unreachable: keep trying
      } finally {
        if (this.timer !== null) this.timer = setTimeout(tick, this.pollInterval);
      }
    };
    this.timer = setTimeout(tick, 0);
  }

  stopPolling() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

function parse(event) {
  try {
    return JSON.parse(event.data);
  } catch {
    return {};
  }
}
