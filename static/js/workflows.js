// The run page's DAG (templates/workflows/run.html): an arrow from each step to every step that
// waits for it. Each step is an <article data-step data-after="dependency names" data-state>; the
// arrows are drawn into the <svg class="wf-edges"> under them, from the right edge of the
// dependency to the left edge of the dependent (under the steps in between when it skips a
// column), coloured by the dependency's state. Redrawn when
// the live socket swaps a new #run-body in, and when the window or the layout changes size.
(() => {
  const SVG = "http://www.w3.org/2000/svg";

  function draw(dag) {
    const svg = dag.querySelector("svg.wf-edges");
    if (!svg) return;
    const origin = dag.getBoundingClientRect();
    const steps = new Map();
    dag.querySelectorAll("[data-step]").forEach((node) => steps.set(node.dataset.step, node));
    svg.replaceChildren();
    const marker = document.createElementNS(SVG, "marker");
    marker.setAttribute("id", "wf-arrow");
    marker.setAttribute("viewBox", "0 0 10 10");
    marker.setAttribute("refX", "9");
    marker.setAttribute("refY", "5");
    marker.setAttribute("markerWidth", "7");
    marker.setAttribute("markerHeight", "7");
    marker.setAttribute("orient", "auto-start-reverse");
    const head = document.createElementNS(SVG, "path");
    head.setAttribute("d", "M 0 0 L 10 5 L 0 10 z");
    head.setAttribute("fill", "#757575");
    marker.append(head);
    const defs = document.createElementNS(SVG, "defs");
    defs.append(marker);
    svg.append(defs);
    const columns = [...dag.querySelectorAll(":scope > .wf-column")];
    const column = (node) => columns.indexOf(node.closest(".wf-column"));
    const box = (node) => {
      const r = node.getBoundingClientRect();
      const left = r.left - origin.left + dag.scrollLeft;
      const top = r.top - origin.top + dag.scrollTop;
      return { left, top, right: left + r.width, bottom: top + r.height, width: r.width, height: r.height };
    };
    let floor = 0;
    steps.forEach((node) => { floor = Math.max(floor, box(node).bottom); });
    let lane = 0;
    steps.forEach((node, name) => {
      (node.dataset.after || "").split(" ").filter(Boolean).forEach((before) => {
        const from = steps.get(before);
        if (!from) return;
        const a = box(from);
        const b = box(node);
        let d;
        if (column(node) - column(from) > 1) {
          // It skips a column: below the steps in between rather than behind them.
          const x1 = a.left + a.width / 2;
          const x2 = b.left + b.width / 2;
          const y = floor + 14 + 10 * lane++;
          d = `M ${x1} ${a.bottom} V ${y - 8} Q ${x1} ${y} ${x1 + 8} ${y} H ${x2 - 8} Q ${x2} ${y} ${x2} ${y - 8} V ${b.bottom + 2}`;
        } else {
          const x1 = a.right;
          const y1 = a.top + Math.min(24, a.height / 2);
          const x2 = b.left - 2;
          const y2 = b.top + Math.min(24, b.height / 2);
          const bend = Math.max(12, (x2 - x1) / 2);
          d = `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`;
        }
        const path = document.createElementNS(SVG, "path");
        path.setAttribute("d", d);
        path.setAttribute("class", `wf-edge wf-edge-${from.dataset.state || "pending"}`);
        path.setAttribute("marker-end", "url(#wf-arrow)");
        path.dataset.from = before;
        path.dataset.to = name;
        svg.append(path);
      });
    });
    dag.style.paddingBottom = lane ? `${14 + 10 * lane}px` : "";
  }

  function drawAll() {
    document.querySelectorAll("[data-wf-dag]").forEach(draw);
  }

  const resized = new ResizeObserver(drawAll);
  function watch() {
    resized.disconnect(); // a live redraw swapped the old DAG out
    document.querySelectorAll("[data-wf-dag]").forEach((dag) => resized.observe(dag));
    drawAll();
  }

  document.addEventListener("DOMContentLoaded", watch);
  document.addEventListener("htmx:oobAfterSwap", watch);
  document.addEventListener("htmx:afterSettle", watch);
  window.addEventListener("resize", drawAll);
  document.addEventListener("toggle", drawAll, true); // an opened <details> moves the steps below it
})();
