// app.js: the three pages of corinfomax serve (runs, run, neighbours) over
// the JSON API of the same server. Plain JS, no dependencies; values from
// the run directories are inserted as text, never as HTML.
"use strict";

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) {
    if (k === "class") e.className = attrs[k];
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), attrs[k]);
    else e.setAttribute(k, attrs[k]);
  }
  for (const c of kids.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

async function api(path, opt) {
  const r = await fetch(path, opt);
  const body = await r.json().catch(() => ({error: `${r.status} ${r.statusText}`}));
  if (!r.ok && r.status !== 202) throw new Error(body.error || r.statusText);
  body._status = r.status;
  return body;
}

const params = new URLSearchParams(location.search);
const main = document.getElementById("main");
const num = (v, d = 2) => (typeof v === "number" && Number.isFinite(v)) ? v.toFixed(d) : "-";
const stateBadge = s => h("span", {class: `state state-${s}`, "data-state": s}, s);
const runLink = (id, page = "run") => `/${page}?run=${encodeURIComponent(id)}`;

function showError(err) {
  main.replaceChildren(h("p", {class: "error"}, String(err.message || err)));
}

// sortableTable renders header + rows; clicking a header sorts by it
// (numbers numerically, "-" last).
function sortableTable(header, rows, id) {
  const table = h("table", {id});
  const thead = h("tr", {}, header.map((c, i) => h("th", {class: "sortable", "data-col": i, onclick: () => sortBy(i)}, c)));
  const tbody = h("tbody");
  table.append(h("thead", {}, thead), tbody);
  let col = -1, dir = 1;
  // A number, or a number over a count ("4.8 / 64"), sorts and aligns as a
  // number; "512-512-64" (a projector) is text.
  const key = v => /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?(\s*\/\s*\d+)?\s*$/.test(v) ? parseFloat(v) : null;
  function render() {
    tbody.replaceChildren(...rows.map(r => h("tr", {}, r.map(c => h("td", {class: key(c) !== null ? "num" : ""}, c)))));
  }
  function sortBy(i) {
    dir = col === i ? -dir : 1; col = i;
    rows.sort((a, b) => {
      const x = key(a[i]), y = key(b[i]);
      if (x === null && y === null) return dir * String(a[i]).localeCompare(String(b[i]));
      if (x === null) return 1;
      if (y === null) return -1;
      return dir * (x - y);
    });
    thead.querySelectorAll("th").forEach((th, j) => th.className = "sortable" + (j === i ? (dir > 0 ? " sorted-asc" : " sorted-desc") : ""));
    render();
  }
  render();
  // Wide tables (compare's has 13 columns) scroll inside the page, not past it
  // (.table-scroll, as the runs table's box).
  return h("div", {class: "table-scroll"}, table);
}

// ---- runs page ----
async function runsPage() {
  document.title = "runs · corinfomax serve";
  // ?compare=a,b preselects runs (a link to a comparison).
  const preset = params.get("compare");
  const selected = new Set(preset ? preset.split(",") : JSON.parse(sessionStorage.getItem("selected") || "[]"));
  const tableBox = h("div", {class: "table-scroll"}), cmpBox = h("div", {id: "compare"});
  const cmpButton = h("button", {id: "compare-button", onclick: compare}, "Compare selected");
  main.replaceChildren(h("h1", {}, "Runs"), tableBox, h("p", {}, cmpButton, " ", h("span", {class: "muted"}, "the table corinfomax compare prints; click a column to sort")), cmpBox);
  async function refresh() {
    let data;
    try { data = await api("/api/runs"); } catch (e) { tableBox.replaceChildren(h("p", {class: "error"}, e.message)); return; }
    if (data.runs.length === 0) { tableBox.replaceChildren(h("p", {class: "muted"}, "No run directory (with config.json) found.")); return; }
    const rows = data.runs.map(r => {
      const cb = h("input", {type: "checkbox", "data-run": r.id});
      cb.checked = selected.has(r.id);
      cb.addEventListener("change", () => { cb.checked ? selected.add(r.id) : selected.delete(r.id); sessionStorage.setItem("selected", JSON.stringify([...selected])); });
      const knn = r.knn || {}, ev = r.eval || {};
      return h("tr", {"data-run": r.id}, h("td", {}, cb), h("td", {}, h("a", {href: runLink(r.id)}, r.id)),
        h("td", {}, r.method), h("td", {}, r.recipe), h("td", {}, r.backbone),
        h("td", {class: "num"}, `${r.epochs_done} / ${r.epochs_total}`), h("td", {}, stateBadge(r.state)),
        h("td", {class: "num"}, num(knn.k20)), h("td", {class: "num"}, num(knn.k200)),
        h("td", {class: "num"}, num(r.online_probe)), h("td", {class: "num"}, num(ev.linear_top1)),
        h("td", {}, r.has_checkpoint ? h("a", {href: runLink(r.id, "neighbours")}, "neighbours") : h("span", {class: "muted"}, "no checkpoint")));
    });
    tableBox.replaceChildren(h("table", {id: "runs"}, h("thead", {}, h("tr", {}, ["", "run", "method", "recipe", "backbone", "epochs", "state",
      "online kNN k=20", "online kNN k=200", "online probe", "linear top-1", ""].map(c => h("th", {}, c)))), h("tbody", {}, rows)));
  }
  async function compare() {
    const ids = [...selected];
    if (ids.length === 0) { cmpBox.replaceChildren(h("p", {class: "muted"}, "Select runs with the check boxes first.")); return; }
    try {
      const c = await api("/api/compare?" + ids.map(id => "run=" + encodeURIComponent(id)).join("&"));
      cmpBox.replaceChildren(h("h2", {}, "Comparison"), sortableTable(c.header, c.rows, "compare-table"), h("p", {class: "muted"}, c.note));
    } catch (e) { cmpBox.replaceChildren(h("p", {class: "error"}, e.message)); }
  }
  await refresh();
  if (selected.size > 0) compare();
  setInterval(refresh, 5000);
}

// ---- run page ----
async function runPage() {
  const id = params.get("run");
  if (!id) return showError("no run given (?run=ID)");
  let info;
  try { info = await api("/api/run?run=" + encodeURIComponent(id)); } catch (e) { return showError(e); }
  document.title = `${id} · corinfomax serve`;
  document.getElementById("nav").append(h("a", {href: "/"}, "runs"), h("a", {href: runLink(id, "neighbours")}, "neighbours"));
  const head = h("div", {id: "summary"});
  const ids = ["loss", "components", "lr", "throughput", "knn", "erank", "spectrum"];
  const boxes = Object.fromEntries(ids.map(k => [k, h("div", {id: "chart-" + k})]));
  main.replaceChildren(h("h1", {}, id), head, h("div", {class: "charts"}, ids.map(k => boxes[k])),
    h("h2", {}, "config.json"), h("pre", {id: "config"}, JSON.stringify(info.config, null, 2)));
  let recs = [], cursor = "";
  function summary(r, state) {
    const knn = r.knn || {};
    head.replaceChildren(h("p", {}, stateBadge(state || r.state), ` ${r.method} · ${r.recipe} · ${r.backbone} · ${r.data} · epoch ${r.epochs_done} / ${r.epochs_total}`,
      knn.k20 !== undefined ? ` · online kNN k=20 ${num(knn.k20)}%` : "", r.stop_error ? h("span", {class: "error"}, ` · ${r.stop_error}`) : ""));
  }
  summary(info.run);
  function draw() {
    const steps = recs.filter(r => r.type === "step"), epochs = recs.filter(r => r.type === "epoch");
    const skip = new Set(["type", "epoch", "step", "lr", "loss", "images_per_sec", "skipped_steps"]);
    const comps = [];
    for (const r of steps) for (const k in r) if (!skip.has(k) && typeof r[k] === "number" && !comps.includes(k)) comps.push(k);
    const sv = key => steps.filter(r => typeof r[key] === "number").map(r => [r.step, r[key]]);
    Charts.line(boxes.loss, {title: "loss per step", xLabel: "step", series: [{name: "loss", points: sv("loss")}]});
    Charts.line(boxes.components, {title: "loss components per step", xLabel: "step", series: comps.map(c => ({name: c, points: sv(c)}))});
    Charts.line(boxes.lr, {title: "learning rate", xLabel: "step", series: [{name: "lr", points: sv("lr")}]});
    Charts.line(boxes.throughput, {title: "throughput (two-view images / s)", xLabel: "step", series: [{name: "per step", points: sv("images_per_sec")},
      {name: "epoch mean", points: epochs.filter(r => typeof r.images_per_sec === "number").map(r => [r.step, r.images_per_sec])}]});
    const ks = [];
    for (const r of epochs) for (const k in (r.knn || {})) if (!ks.includes(k)) ks.push(k);
    const knnSeries = ks.map(k => ({name: "kNN " + k.replace("k", "k="), points: epochs.filter(r => r.knn && typeof r.knn[k] === "number").map(r => [r.epoch, r.knn[k]])}));
    const probe = epochs.filter(r => r.online_probe && typeof r.online_probe.top1 === "number").map(r => [r.epoch, r.online_probe.top1]);
    if (probe.length) knnSeries.push({name: "online probe", points: probe});
    Charts.line(boxes.knn, {title: "online top-1 (%) per epoch", xLabel: "epoch", integerX: true, markers: true, series: knnSeries, empty: "no online kNN yet (after epoch 1)"});
    Charts.line(boxes.erank, {title: "effective rank per epoch", xLabel: "epoch", integerX: true, markers: true,
      series: [{name: "effective rank", points: epochs.filter(r => r.spectrum && typeof r.spectrum.effective_rank === "number").map(r => [r.epoch, r.spectrum.effective_rank])}]});
    const spec = epochs.filter(r => r.spectrum && Array.isArray(r.spectrum.eigenvalues));
    Charts.line(boxes.spectrum, {title: "covariance spectrum per epoch (eigenvalues, log scale)", xLabel: "index", logY: true, lastValue: false,
      empty: "no spectrum recorded (runs from before serve log only its effective rank)",
      series: spec.map((r, i) => ({name: "epoch " + r.epoch, width: i === spec.length - 1 ? 2.2 : 1,
        color: i === spec.length - 1 ? "#dc2626" : `hsl(220, 60%, ${80 - 50 * (i + 1) / spec.length}%)`,
        points: r.spectrum.eigenvalues.map((v, j) => [j + 1, typeof v === "number" ? v : NaN])}))});
  }
  async function poll() {
    try {
      const m = await api(`/api/metrics?run=${encodeURIComponent(id)}&cursor=${encodeURIComponent(cursor)}`);
      if (m.reset) recs = [];
      const changed = m.records.length > 0 || m.reset || cursor === "";
      recs.push(...m.records);
      cursor = m.cursor;
      if (changed) {
        draw();
        const r = await api("/api/run?run=" + encodeURIComponent(id));
        summary(r.run, m.state);
      }
      document.body.dataset.loaded = "1";
    } catch (e) { head.append(h("span", {class: "error"}, " " + e.message)); }
  }
  await poll();
  setInterval(poll, 2000);
}

// ---- neighbours page ----
async function neighboursPage() {
  const id = params.get("run");
  if (!id) return showError("no run given (?run=ID)");
  document.title = `neighbours of ${id} · corinfomax serve`;
  document.getElementById("nav").append(h("a", {href: "/"}, "runs"), h("a", {href: runLink(id)}, "run"));
  const per = 48;
  let page = +(params.get("page") || 0);
  const grid = h("div", {class: "thumbs", id: "test-images"}), pager = h("div", {class: "pager"}), result = h("div", {id: "result"});
  const k = h("input", {type: "number", min: 1, max: 100, value: 10, style: "width:4em"});
  const upload = h("input", {type: "file", accept: "image/*", id: "upload"});
  upload.addEventListener("change", () => upload.files[0] && search(null, upload.files[0]));
  main.replaceChildren(h("h1", {}, `Neighbours · ${id}`),
    h("div", {class: "cols"},
      h("div", {}, h("h2", {}, "Pick a test image"), pager, grid, h("h2", {}, "…or upload one"), upload),
      h("div", {}, h("p", {}, "k ", k), result)));
  const img = (split, i) => `/api/image?run=${encodeURIComponent(id)}&split=${split}&index=${i}`;
  const thumb = (split, n, label, extra) => h("div", {class: "thumb" + (extra || ""), "data-index": n.index},
    h("img", {src: img(split, n.index), alt: `${split} ${n.index}`, loading: "lazy"}),
    h("div", {class: "cls"}, n.class || (n.label >= 0 ? n.label : "")), label ? h("div", {class: "muted"}, label) : null);
  async function loadPage() {
    try {
      const p = await api(`/api/images?run=${encodeURIComponent(id)}&split=test&page=${page}&per_page=${per}`);
      grid.replaceChildren(...p.images.map(n => { const t = thumb("test", n, `#${n.index}`); t.addEventListener("click", () => search(n.index)); return t; }));
      pager.replaceChildren(h("button", {onclick: () => { if (page > 0) { page--; loadPage(); } }}, "‹ prev"),
        h("span", {id: "page-info"}, `page ${page + 1} / ${p.pages} (${p.total} test images)`),
        h("button", {onclick: () => { if (page + 1 < p.pages) { page++; loadPage(); } }}, "next ›"));
    } catch (e) { grid.replaceChildren(h("p", {class: "error"}, e.message)); }
  }
  let token = 0;
  async function search(index, file) {
    const my = ++token;
    grid.querySelectorAll(".thumb").forEach(t => t.classList.toggle("sel", +t.dataset.index === index));
    result.replaceChildren(h("p", {class: "muted"}, "searching…"));
    let r;
    try {
      const q = `run=${encodeURIComponent(id)}&k=${encodeURIComponent(k.value)}`;
      r = file ? await api("/api/neighbours?" + q, {method: "POST", body: file}) : await api(`/api/neighbours?${q}&index=${index}`);
    } catch (e) { result.replaceChildren(h("p", {class: "error"}, e.message)); return; }
    if (my !== token) return;
    if (r._status === 202) {
      result.replaceChildren(h("p", {class: "muted", id: "progress"}, `Computing the features of the checkpoint (once per checkpoint, cached in the run directory): ${r.progress}…`));
      setTimeout(() => my === token && search(index, file), 1500);
      return;
    }
    const qimg = file ? h("img", {src: URL.createObjectURL(file), alt: "upload"}) : h("img", {src: img("test", index), alt: `test ${index}`});
    const ql = r.query.label;
    const row = (title, list, id2) => h("div", {class: "nbrow"}, h("h2", {}, title),
      h("div", {class: "thumbs", id: id2}, list.map(n => thumb("train", n, n.similarity.toFixed(3), ql >= 0 ? (n.label === ql ? " same" : " other") : ""))));
    const agree = list => ql >= 0 ? ` · ${list.filter(n => n.label === ql).length} / ${list.length} of its class` : "";
    result.replaceChildren(
      h("div", {class: "query"}, qimg, h("div", {}, h("strong", {}, file ? `uploaded ${r.query.width} x ${r.query.height}` : `test #${index}`),
        h("div", {}, r.query.class ? `class ${r.query.class}` : ""),
        h("div", {class: "muted"}, `checkpoint of epoch ${r.checkpoint.epoch} (step ${r.checkpoint.step})${r.stale ? " · a newer checkpoint is being read" : ""}`))),
      row(`Nearest in backbone features (${r.searched.dim}-d, cosine, ${r.searched.features} training images)${agree(r.features)}`, r.features, "nb-features"),
      row(`Nearest in raw pixels (${r.searched.pixels} training images)${agree(r.pixels)}`, r.pixels, "nb-pixels"));
    document.body.dataset.searched = "1";
  }
  await loadPage();
  const start = params.get("index");
  if (start !== null) search(+start);
}

({runs: runsPage, run: runPage, neighbours: neighboursPage})[document.body.dataset.page]().catch(showError);
