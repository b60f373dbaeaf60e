// DOM building and formatting. Every string reaches the page as a text node, never as HTML.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export const $ = (selector) => document.querySelector(selector);

export const STATES = [
  ["success", "success"],
  ["running", "running"],
  ["pending", "queued"],
  ["failed", "failed"],
  ["upstream_failed", "upstream failed"],
  ["warned", "warned"],
  ["skipped", "skipped"],
  ["not_started", "not started"],
  ["none", "not in run"],
];

export function stateLabel(state) {
  const found = STATES.find(([key]) => key === (state || "none"));
  return found ? found[1] : String(state);
}

export function badge(state) {
  return h("span", { class: `badge st-${state || "none"}` }, stateLabel(state));
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${Math.round(seconds % 60)}s`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

export function when(epochSeconds) {
  if (!epochSeconds) return "–";
  const date = new Date(epochSeconds * 1000);
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  if (date.toDateString() === new Date().toDateString()) return time;
  return `${date.toISOString().slice(0, 10)} ${time}`;
}

// One validation problem as the CLI prints it: path:line:column: message.
export function problemLine(problem) {
  const where = [problem.path, problem.line, problem.column].filter((part) => part !== undefined && part !== null);
  return `${where.join(":")}${where.length ? ": " : ""}${problem.message}`;
}

export function count(value) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString("en-US");
}

const SQL_KEYWORDS = new Set(
  `select from where group by order having limit offset join left right full inner outer cross
  on using as and or not in is null case when then else end with union all distinct insert into
  values update delete create replace table view merge matched set qualify over partition window
  rows range between unbounded preceding following current asc desc cast safe_cast if exists true
  false like ilike array struct unnest interval date timestamp extract coalesce count sum avg min
  max except intersect lateral recursive primary key default`.split(/\s+/),
);

// Splits SQL into spans for colouring; the text itself is only ever set with textContent.
export function highlightSql(source) {
  const pattern = /(--[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\/)|('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(`[^`]*`)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)/g;
  const out = [];
  let last = 0;
  for (const match of source.matchAll(pattern)) {
    if (match.index > last) out.push(source.slice(last, match.index));
    const [text, comment, string, quoted, number, word] = match;
    if (comment) out.push(h("span", { class: "sql-comment" }, text));
    else if (string) out.push(h("span", { class: "sql-string" }, text));
    else if (quoted) out.push(h("span", { class: "sql-ident" }, text));
    else if (number) out.push(h("span", { class: "sql-number" }, text));
    else if (word && SQL_KEYWORDS.has(word.toLowerCase())) out.push(h("span", { class: "sql-keyword" }, text));
    else out.push(text);
    last = match.index + text.length;
  }
  if (last < source.length) out.push(source.slice(last));
  return out;
}
