// Column lineage as GET /lineage gives it (each column's sources one step up), walked both ways.

export const tableOf = (column) => column.split(".").slice(0, 2).join(".");

export class ColumnLineage {
  constructor(data) {
    this.tables = data.tables || {};
    this.sources = new Map(Object.entries(data.columns || {}).map(([name, entry]) => [name, entry.sources]));
    this.filters = new Map(Object.entries(data.columns || {}).map(([name, entry]) => [name, entry.filters]));
    this.readers = new Map();
    for (const [name, sources] of this.sources) {
      for (const source of sources) {
        if (!this.readers.has(source)) this.readers.set(source, []);
        this.readers.get(source).push(name);
      }
    }
  }

  // A table's columns, struct fields (col.field) after their column.
  columns(table) {
    return (this.tables[table] || []).map((name) => `${table}.${name}`);
  }

  upstream(column) {
    return walk(column, (name) => this.sources.get(name) || []);
  }

  downstream(column) {
    return walk(column, (name) => this.readers.get(name) || []);
  }
}

function walk(start, next) {
  const seen = new Set();
  const pending = [start];
  while (pending.length) {
    for (const name of next(pending.pop())) {
      if (!seen.has(name)) {
        seen.add(name);
        pending.push(name);
      }
    }
  }
  return [...seen].sort();
}
