// The catalog view: the lake catalogue and the warehouse's tables (GET /tables).
import { api } from "./api.js";
import { count, h, replace } from "./dom.js";

const NOTES = {
  busy: "The warehouse is busy: another process (a run from a terminal) holds it, so its tables may be missing here. Reopen the catalog when it is done.",
  missing: "There is no warehouse yet: start a run to build it.",
};

export class CatalogView {
  // onTask(name): the user asked to see the task that builds a table.
  constructor(container, note, onTask) {
    Object.assign(this, { container, note, onTask });
    this.tables = null; // read when first shown after a run
    this.warehouse = "ok"; // or "busy" / "missing", as GET /tables says
  }

  invalidate() {
    this.tables = null;
  }

  async show(filter) {
    if (this.tables === null) {
      replace(this.container, h("p", { class: "muted" }, "loading…"));
      const answer = await api.tables();
      this.tables = answer.tables || [];
      this.warehouse = answer.warehouse || "ok";
    }
    this.note.hidden = !NOTES[this.warehouse];
    replace(this.note, NOTES[this.warehouse] || "");
    renderCatalog(this.container, this.tables, filter, this.onTask);
  }
}

// The lake catalogue and the warehouse (GET /tables): one row per table, its details folded.
function renderCatalog(container, tables, filter, onTask) {
  const needle = filter.trim().toLowerCase();
  const shown = tables.filter((table) => !needle || table.name.toLowerCase().includes(needle));
  if (!tables.length) {
    replace(container, h("p", { class: "empty" }, "The catalog is empty: run the project first."));
    return;
  }
  const head = ["Table", "Zone", "Rows", "Size", "Built by", "Columns"];
  replace(
    container,
    h(
      "table",
      { class: "grid catalog" },
      h("thead", {}, h("tr", {}, head.map((title) => h("th", { class: ["Rows", "Size"].includes(title) ? "num" : null }, title)))),
      h(
        "tbody",
        {},
        shown.map((table) => {
          const details = h("tr", { class: "details", hidden: true }, h("td", { colspan: head.length }, tableDetails(table)));
          const toggle = () => (details.hidden = !details.hidden);
          const row = h(
            "tr",
            { class: "table-row", dataset: { table: table.name }, tabindex: 0, onclick: toggle, onkeydown: (event) => event.key === "Enter" && toggle() },
            h("td", { class: "mono" }, table.name, table.appendable ? h("span", { class: "tag", title: "accepts rows: POST /<table>?column=value" }, "append") : null),
            h("td", {}, h("span", { class: "zone" }, table.zone || "warehouse")),
            h("td", { class: "num rows" }, count(table.rows)),
            h("td", { class: "num muted" }, size(table)),
            h("td", {}, table.task ? h("button", { class: "link mono", onclick: (event) => (event.stopPropagation(), onTask(table.task)) }, table.task) : h("span", { class: "muted" }, "source")),
            h("td", { class: "muted cols", title: (table.columns || []).map((column) => column.name).join(", ") }, columnSummary(table.columns || [])),
          );
          return [row, details];
        }),
      ),
    ),
  );
}

function size(table) {
  if (!table.bytes) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = table.bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const files = table.files ? ` · ${count(table.files)} file${table.files === 1 ? "" : "s"}` : "";
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}${files}`;
}

function columnSummary(columns) {
  if (!columns.length) return "–";
  const names = columns.map((column) => column.name);
  return `${columns.length}: ${names.slice(0, 5).join(", ")}${columns.length > 5 ? ", …" : ""}`;
}

function tableDetails(table) {
  const facts = [
    ["storage", table.storage],
    ["file", table.task_path],
    ["reads", (table.upstream || []).join(", ")],
    ["last run", table.last_run],
    ["partitions", (table.partitions || []).map((part) => (typeof part === "object" ? JSON.stringify(part) : String(part))).join(", ")],
  ].filter(([, value]) => value);
  return [
    h("div", { class: "columns" }, (table.columns || []).map((column) => h("span", { class: "column" }, h("b", {}, column.name), " ", h("span", { class: "muted" }, column.type || "")))),
    h("div", { class: "extras" }, facts.map(([key, value]) => h("span", {}, h("span", { class: "muted" }, `${key}: `), value))),
  ];
}
