// The DAG drawn with Cytoscape, laid out left to right in layers by dagre.
import cytoscape from "../vendor/cytoscape.esm.min.mjs";
import dagre from "../vendor/cytoscape-dagre.min.mjs";
import { stateLabel } from "./dom.js";

cytoscape.use(dagre);

const COLOURS = {
  none: ["#ffffff", "#94a3b8", "#334155"],
  pending: ["#f1f5f9", "#94a3b8", "#475569"],
  running: ["#dbeafe", "#2563eb", "#1e3a8a"],
  success: ["#bbf7d0", "#16a34a", "#14532d"],
  skipped: ["#e5e7eb", "#9ca3af", "#6b7280"],  // grey: unchanged, not rebuilt (the reason is in the task panel)
  warned: ["#fde68a", "#d97706", "#78350f"],
  failed: ["#fecaca", "#dc2626", "#7f1d1d"],
  upstream_failed: ["#fed7aa", "#ea580c", "#7c2d12"],
  not_started: ["#f8fafc", "#cbd5e1", "#94a3b8"],
};

function style() {
  const rules = [
    {
      selector: "node",
      style: {
        shape: "round-rectangle",
        width: "data(width)",
        height: 26,
        label: "data(label)",
        "font-family": "system-ui, sans-serif",
        "font-size": 11,
        "text-valign": "center",
        "text-halign": "center",
        "text-max-width": "data(textWidth)",
        "text-wrap": "ellipsis",
        "min-zoomed-font-size": 5,
        "border-width": 1.5,
        "transition-property": "background-color, border-color",
        "transition-duration": 200,
      },
    },
    { selector: "node[kind = 'seed']", style: { shape: "barrel" } },
    { selector: "node[kind = 'python']", style: { shape: "cut-rectangle" } },
    { selector: "node[kind = 'check']", style: { shape: "tag", height: 20, "font-size": 9 } },
    {
      selector: "edge",
      style: {
        width: 1.2,
        "curve-style": "bezier",
        "line-color": "#b6bfcc",
        "target-arrow-color": "#b6bfcc",
        "target-arrow-shape": "triangle",
        "arrow-scale": 0.7,
      },
    },
  ];
  for (const [state, [fill, border, text]] of Object.entries(COLOURS)) {
    rules.push({
      selector: `node[state = '${state}']`,
      style: { "background-color": fill, "border-color": border, color: text },
    });
  }
  rules.push(
    { selector: "node[state = 'running']", style: { "border-width": 3 } },
    { selector: "node[state = 'running'].breathe", style: { "border-color": "#93c5fd", "background-color": "#eff6ff" } },
    { selector: "node[state = 'failed']", style: { "border-width": 3 } },
    { selector: "node[state = 'upstream_failed'], node[state = 'not_started']", style: { "border-style": "dashed" } },
    // a task whose table failed an error-severity check is drawn failed, a warned one amber
    { selector: "node.check-failed", style: { "background-color": COLOURS.failed[0], "border-color": COLOURS.failed[1], color: COLOURS.failed[2], "border-width": 3, "outline-width": 3, "outline-color": COLOURS.failed[1], "outline-offset": 2 } },
    { selector: "node.check-warned", style: { "outline-width": 3, "outline-color": COLOURS.warned[1], "outline-offset": 2 } },
    { selector: ".dim", style: { opacity: 0.18 } },
    { selector: "node.match", style: { "underlay-color": "#facc15", "underlay-opacity": 0.55, "underlay-padding": 5 } },
    { selector: "node:selected", style: { "underlay-color": "#4f46e5", "underlay-opacity": 0.35, "underlay-padding": 6 } },
    { selector: "edge.near", style: { "line-color": "#4f46e5", "target-arrow-color": "#4f46e5", width: 2 } },
    { selector: ".lineage-dim", style: { opacity: 0.18 } },
    { selector: "node.lineage-up", style: { "underlay-color": "#0ea5e9", "underlay-opacity": 0.5, "underlay-padding": 6 } },
    { selector: "node.lineage-down", style: { "underlay-color": "#a855f7", "underlay-opacity": 0.5, "underlay-padding": 6 } },
  );
  return rules;
}

const MAX_FIT_ZOOM = 1.25;

function nodeWidth(name) {
  return Math.max(70, Math.min(230, 16 + name.length * 6.4));
}

export class GraphView {
  constructor(container, { onSelect }) {
    this.container = container;
    this.onSelect = onSelect;
    this.cy = cytoscape({
      container,
      style: style(),
      minZoom: 0.05,
      maxZoom: 3,
      boxSelectionEnabled: false,
      autoungrabify: true,
      textureOnViewport: true,
    });
    this.cy.on("tap", "node", (event) => this.onSelect(event.target.id()));
    this.cy.on("tap", (event) => {
      if (event.target === this.cy) this.onSelect(null);
    });
    window.addEventListener("resize", () => this.cy.resize());
    // Zoomed out, labels are too small to draw: the pointed-at task is named in a tooltip.
    this.tip = document.createElement("div");
    this.tip.className = "graph-tip";
    this.tip.hidden = true;
    container.after(this.tip);
    this.cy.on("mouseover", "node", (event) => this.showTip(event.target));
    this.cy.on("mouseout", "node", () => (this.tip.hidden = true));
    this.cy.on("viewport", () => (this.tip.hidden = true));
    // Running tasks breathe, so a glance tells what the run is doing now.
    setInterval(() => this.cy.nodes("[state = 'running']").toggleClass("breathe"), 700);
  }

  showTip(node) {
    const box = node.renderedBoundingBox();
    this.tip.textContent = `${node.id()} · ${stateLabel(node.data("state"))}`;
    this.tip.style.left = `${Math.round(box.x1)}px`;
    this.tip.style.top = `${Math.round(box.y2 + 4)}px`;
    this.tip.hidden = false;
  }

  // Draws the graph of GET /graph (nodes with name, kind, state; edges from → to).
  render(graph) {
    const elements = [];
    for (const node of graph.nodes) {
      const width = nodeWidth(node.name);
      elements.push({
        group: "nodes",
        data: { id: node.name, label: node.name, kind: node.kind, state: node.state || "none", width, textWidth: width - 12 },
      });
    }
    const present = new Set(graph.nodes.map((node) => node.name));
    for (const edge of graph.edges) {
      if (!present.has(edge.from) || !present.has(edge.to)) continue;
      elements.push({ group: "edges", data: { id: `${edge.from}\u2192${edge.to}`, source: edge.from, target: edge.to } });
    }
    this.highlighted = null;
    this.cy.batch(() => {
      this.cy.elements().remove();
      this.cy.add(elements);
    });
    const layout = this.cy.layout({
      name: "dagre",
      rankDir: "LR",
      nodeSep: 6,
      rankSep: 50,
      edgeSep: 1,
      ranker: "network-simplex",
      fit: true,
      padding: 24,
      animate: false,
    });
    layout.run();
    this.limitZoom();
    this.container.dataset.renderedNodes = String(this.cy.nodes().length);
  }

  setStates(states) {
    this.cy.batch(() => {
      this.cy.nodes().forEach((node) => {
        const state = states.get(node.id()) || "none";
        if (node.data("state") !== state) node.data("state", state); // restyle only what changed
      });
    });
  }

  setState(name, state) {
    const node = this.cy.getElementById(name);
    if (node.nonempty()) node.data("state", state || "none");
  }

  // owners: task name → "failed" | "warned", the worst check of the table it builds
  markChecks(owners) {
    this.cy.batch(() => {
      this.cy.nodes().forEach((node) => {
        const worst = owners.get(node.id());
        node.toggleClass("check-failed", worst === "failed");
        node.toggleClass("check-warned", worst === "warned");
        node.data("checks", worst || "");
      });
    });
  }

  select(name, { center = false } = {}) {
    this.cy.batch(() => {
      this.cy.elements().unselect();
      this.cy.edges().removeClass("near");
      if (!name) return;
      const node = this.cy.getElementById(name);
      if (node.empty()) return;
      node.select();
      node.connectedEdges().addClass("near");
    });
    if (center && name) {
      const node = this.cy.getElementById(name);
      if (node.nonempty()) this.cy.animate({ center: { eles: node }, zoom: Math.max(this.cy.zoom(), 1) }, { duration: 250 });
    }
  }

  highlight(matches) {
    const key = matches === null ? null : [...matches].sort().join("\n");
    if (key === this.highlighted) return; // called on every repaint: only changes cost
    this.highlighted = key;
    this.cy.batch(() => {
      this.cy.elements().removeClass("dim match");
      if (matches === null) return;
      this.cy.nodes().forEach((node) => node.addClass(matches.has(node.id()) ? "match" : "dim"));
      this.cy.edges().addClass("dim");
    });
  }

  // A column's lineage: the tasks whose tables hold its sources (up) and its dependents
  // (down) stand out, the rest fades; null clears it.
  showLineage(lineage) {
    this.cy.batch(() => {
      this.cy.elements().removeClass("lineage-up lineage-down lineage-dim");
      if (lineage === null) return;
      this.cy.nodes().forEach((node) => {
        const name = node.id();
        if (lineage.up.has(name)) node.addClass("lineage-up");
        else if (lineage.down.has(name)) node.addClass("lineage-down");
        else if (name !== lineage.task) node.addClass("lineage-dim");
      });
      this.cy.edges().forEach((edge) => {
        const ends = [edge.source().id(), edge.target().id()];
        const along = ends.every((end) => end === lineage.task || lineage.up.has(end) || lineage.down.has(end));
        if (!along) edge.addClass("lineage-dim");
      });
    });
  }

  // A small graph fitted to a big screen would be drawn huge: cap the zoom and centre it.
  limitZoom() {
    if (this.cy.zoom() > MAX_FIT_ZOOM) {
      this.cy.zoom(MAX_FIT_ZOOM);
      this.cy.center();
    }
  }

  fit() {
    this.cy.fit(undefined, 24);
    this.limitZoom();
  }

  zoom(factor) {
    const extent = this.cy.extent();
    this.cy.zoom({
      level: this.cy.zoom() * factor,
      position: { x: (extent.x1 + extent.x2) / 2, y: (extent.y1 + extent.y2) / 2 },
    });
  }

  upstream(name) {
    return this.cy.getElementById(name).incomers("node").map((node) => node.id());
  }

  downstream(name) {
    return this.cy.getElementById(name).outgoers("node").map((node) => node.id());
  }
}
