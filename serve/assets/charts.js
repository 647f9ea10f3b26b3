// charts.js: small dependency-free SVG line charts for corinfomax serve.
//
//   Charts.line(container, {title, series: [{name, points: [[x, y], ...]}],
//                xLabel, logY, lastValue})
//
// draws axes with ticks, one polyline per series and a legend with each
// series' last value. Non-finite and (on a log axis) non-positive values
// are skipped. The SVG carries data-series (the series count) and each
// polyline data-name and data-points, which the browser test reads.
"use strict";
const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f", "#475569", "#ca8a04"];
  const W = 460, H = 250, M = {l: 54, r: 12, t: 8, b: 34};

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  // niceTicks returns about n round tick values covering [lo, hi].
  function niceTicks(lo, hi, n) {
    if (!(hi > lo)) { hi = lo + 1; lo = lo - 1; }
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map(f => f * mag).find(s => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }

  function fmt(v) {
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 1e5 || a < 1e-3) return v.toExponential(1);
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    return +v.toPrecision(3) + "";
  }

  function line(container, opt) {
    container.innerHTML = "";
    container.classList.add("chart");
    const h = document.createElement("h3");
    h.textContent = opt.title;
    container.appendChild(h);
    const logY = !!opt.logY;
    const ok = y => Number.isFinite(y) && (!logY || y > 0);
    const series = (opt.series || []).map(s => ({name: s.name, color: s.color,
      points: s.points.filter(p => Number.isFinite(p[0]) && ok(p[1]))})).filter(s => s.points.length > 0);
    if (series.length === 0) {
      const d = document.createElement("div");
      d.className = "empty";
      d.textContent = opt.empty || "no data yet";
      container.appendChild(d);
      return;
    }
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const s of series) for (const [x, y] of s.points) {
      const yy = logY ? Math.log10(y) : y;
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, yy); y1 = Math.max(y1, yy);
    }
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    if (y1 === y0) { y0 -= logY ? 0.5 : Math.abs(y0) * 0.1 || 1; y1 += logY ? 0.5 : Math.abs(y1) * 0.1 || 1; }
    const pad = (y1 - y0) * 0.05;
    y0 -= pad; y1 += pad;
    const sx = x => M.l + (x - x0) / (x1 - x0) * (W - M.l - M.r);
    const sy = y => H - M.b - ((logY ? Math.log10(y) : y) - y0) / (y1 - y0) * (H - M.t - M.b);
    const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, "data-series": series.length, role: "img", "aria-label": opt.title});
    const yt = logY ? niceTicks(Math.ceil(y0), Math.floor(y1), 5).filter(Number.isInteger).map(e => Math.pow(10, e))
      : niceTicks(y0, y1, 5);
    for (const v of yt) {
      const y = sy(v);
      if (y < M.t - 1 || y > H - M.b + 1) continue;
      el("line", {x1: M.l, x2: W - M.r, y1: y, y2: y, class: "grid"}, svg);
      el("text", {x: M.l - 4, y: y + 3, "text-anchor": "end"}, svg).textContent = fmt(v);
    }
    const xt = niceTicks(x0, x1, 6).filter(v => !opt.integerX || Number.isInteger(v));
    for (const v of xt) {
      const x = sx(v);
      if (x < M.l - 1 || x > W - M.r + 1) continue;
      el("line", {x1: x, x2: x, y1: H - M.b, y2: H - M.b + 4, class: "axis"}, svg);
      el("text", {x: x, y: H - M.b + 15, "text-anchor": "middle"}, svg).textContent = fmt(v);
    }
    el("line", {x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: "axis"}, svg);
    el("line", {x1: M.l, x2: M.l, y1: M.t, y2: H - M.b, class: "axis"}, svg);
    if (opt.xLabel) el("text", {x: (M.l + W - M.r) / 2, y: H - 4, "text-anchor": "middle"}, svg).textContent = opt.xLabel;
    series.forEach((s, i) => {
      const color = s.color || palette[i % palette.length];
      const pts = s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
      el("polyline", {points: pts, fill: "none", stroke: color, "stroke-width": s.width || 1.5,
        "data-name": s.name, "data-points": s.points.length}, svg);
      if (s.points.length === 1 || opt.markers) {
        for (const [x, y] of s.points) el("circle", {cx: sx(x), cy: sy(y), r: 2.5, fill: color}, svg);
      }
      s.color = color;
    });
    container.appendChild(svg);
    const legend = document.createElement("div");
    legend.className = "legend";
    for (const s of series) {
      const item = document.createElement("span");
      const last = s.points[s.points.length - 1][1];
      item.innerHTML = `<i style="background:${s.color}"></i>`;
      item.appendChild(document.createTextNode(opt.lastValue === false ? s.name : `${s.name} ${fmt2(last)}`));
      item.dataset.name = s.name;
      legend.appendChild(item);
    }
    container.appendChild(legend);
  }

  // fmt2 prints a legend value: 2 decimals for accuracies and ranks,
  // 4 significant digits otherwise.
  function fmt2(v) {
    const a = Math.abs(v);
    if (a >= 1 && a < 1e5) return v.toFixed(2);
    return v.toPrecision(4);
  }

  return {line, fmt: fmt2};
})();
