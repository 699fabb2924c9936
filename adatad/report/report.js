// adatad report: draws what adatad/report/build.py computed (no computation of metrics here).
// Hand-written SVG, no library: bar charts, sortable tables, and per video a timeline built only when the
// video is opened (its data is a separate JSON script element, parsed then).
(() => {
  "use strict";
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const OUTCOME_NAMES = ["True positive", "Double detection", "Wrong label", "Localization error", "Confusion", "Background"];
  const OUTCOME_COLORS = ["#33a02c", "#b2df8a", "#1f78b4", "#fb9a99", "#e31a1c", "#a6cee3"]; // DETAD's palette
  const ROW = 30, GT_Y = 3, GT_H = 8, PRED_Y = 13, PRED_H = 14, AXIS = 22, LABEL_W = 130;

  // ------------------------------------------------------------------ helpers
  const $ = (id) => document.getElementById(id);
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k);
    return e;
  }
  function s(tag, attrs, ...kids) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) e.setAttribute(k, v);
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k);
    return e;
  }
  const esc = (t) => String(t).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(2));
  const mean = (a) => a.reduce((p, q) => p + q, 0) / a.length;
  function clock(t) {
    const neg = t < 0 ? "-" : "";
    t = Math.abs(t);
    const tenths = Math.round(t * 10), m = Math.floor(tenths / 600), sec = (tenths - 600 * m) / 10;
    return `${neg}${m}:${sec < 10 ? "0" : ""}${sec.toFixed(tenths % 10 ? 1 : 0)}`;
  }
  function classColor(k) {
    return `hsl(${(k * 137.508) % 360}, 62%, 48%)`;
  }
  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function viridis(x) {
    x = Math.min(1, Math.max(0, x)) * (VIRIDIS.length - 1);
    const i = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - i;
    const c = VIRIDIS[i].map((v, j) => Math.round(v + f * (VIRIDIS[i + 1][j] - v)));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }
  function niceCeil(v) { // the smallest of 1, 2, 4, 5 or 8 x 10^k that is >= v (axis maximum with round quarter ticks)
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    return [1, 2, 4, 5, 8, 10].map((m) => m * p).find((x) => x >= v * (1 - 1e-9));
  }
  function legend(names, colors) {
    return h("span", { class: "legend" }, names.map((n, i) => h("span", {}, h("i", { style: `background:${colors[i]}` }), n)));
  }

  // a table whose columns sort on click; cols: [{name, key(row) -> value, fmt(value) -> text, title}]
  function sortableTable(cols, rows, opts = {}) {
    const table = h("table", { class: "data", id: opts.id || null });
    const head = h("tr");
    const body = h("tbody");
    let sortCol = opts.sortCol ?? -1, dir = opts.dir || -1;
    function render() {
      const sorted = rows.slice();
      if (sortCol >= 0) {
        const key = cols[sortCol].key;
        sorted.sort((a, b) => {
          const x = key(a), y = key(b);
          if (x === y) return 0;
          if (x === null || x === undefined) return 1;
          if (y === null || y === undefined) return -1;
          return (x < y ? -1 : 1) * dir;
        });
      }
      body.replaceChildren(...sorted.map((r) => {
        const tr = h("tr", opts.rowAttrs ? opts.rowAttrs(r) : {}, cols.map((c) => h("td", { text: c.fmt ? c.fmt(c.key(r)) : c.key(r) })));
        if (opts.onRow) tr.addEventListener("click", () => opts.onRow(r, tr));
        return tr;
      }));
      [...head.children].forEach((th, i) => {
        th.classList.toggle("sorted-asc", i === sortCol && dir > 0);
        th.classList.toggle("sorted-desc", i === sortCol && dir < 0);
      });
      if (opts.onRender) opts.onRender(body);
    }
    cols.forEach((c, i) => head.append(h("th", {
      class: "sortable", title: c.title || "click to sort",
      onclick: () => { if (sortCol === i) dir = -dir; else { sortCol = i; dir = c.asc ? 1 : -1; } render(); },
    }, c.name)));
    table.append(h("thead", {}, head), body);
    render();
    table.rerender = render;
    table.setRows = (r) => { rows = r; render(); };
    return table;
  }

  // vertical bars: items [{label, sub, value (0..1 or null), color, parts: [[value, color], ...] (stacked)}]
  function barChart(items, o) {
    const W = o.width || 460, H = o.height || 220, L = 44, B = o.bottom || 38, T = 14;
    const max = o.max || 1, bw = (W - L - 10) / Math.max(items.length, 1);
    const y = (v) => T + (H - T - B) * (1 - v / max);
    const svg = s("svg", { width: W, height: H, class: "chart" });
    for (let k = 0; k <= 4; k++) {
      const v = (max * k) / 4;
      svg.append(s("line", { x1: L, x2: W - 6, y1: y(v), y2: y(v), stroke: "#e3e6ec" }),
        s("text", { x: L - 5, y: y(v) + 4, "text-anchor": "end", class: "small" }, o.tick ? o.tick(v) : (100 * v).toFixed(0)));
    }
    items.forEach((it, i) => {
      const x = L + i * bw + bw * 0.15, w = bw * 0.7;
      const parts = it.parts || (it.value === null || it.value === undefined ? [] : [[it.value, it.color || "#4c78a8"]]);
      let acc = 0;
      for (const [v, c] of parts) {
        if (v > 0) svg.append(s("rect", { x, y: y(acc + v), width: w, height: y(acc) - y(acc + v), fill: c },
          s("title", {}, `${it.label}: ${o.tip ? o.tip(v) : pct(v)}`)));
        acc += v;
      }
      if (!it.parts && it.value !== null && it.value !== undefined && o.valueLabels !== false)
        svg.append(s("text", { x: x + w / 2, y: y(it.value) - 3, "text-anchor": "middle", class: "small" }, o.tip ? o.tip(it.value) : pct(it.value)));
      if (!it.parts && (it.value === null || it.value === undefined))
        svg.append(s("text", { x: x + w / 2, y: y(0) - 3, "text-anchor": "middle", class: "small" }, "no GT"));
      svg.append(s("text", { x: x + w / 2, y: H - B + 13, "text-anchor": "middle" }, it.label));
      [].concat(it.sub || []).forEach((line, j) =>
        svg.append(s("text", { x: x + w / 2, y: H - B + 25 + 11 * j, "text-anchor": "middle", class: "small" }, line)));
    });
    if (o.base !== undefined && o.base !== null)
      svg.append(s("line", { x1: L, x2: W - 6, y1: y(o.base), y2: y(o.base), stroke: "#1d2330", "stroke-dasharray": "4 3" }));
    return svg;
  }

  // horizontal bars: items [{label, value, color}], value 0..max
  function hBarChart(items, o) {
    const W = o.width || 460, rowH = 17, L = o.left || 150, H = items.length * rowH + 8;
    const max = o.max || 1, x = (v) => L + (W - L - 60) * (v / max);
    const svg = s("svg", { width: W, height: H, class: "chart" });
    items.forEach((it, i) => {
      const yy = 4 + i * rowH;
      svg.append(s("text", { x: L - 6, y: yy + 12, "text-anchor": "end" }, it.label),
        s("rect", { x: L, y: yy + 2, width: Math.max(0, x(it.value) - L), height: rowH - 5, fill: it.color || "#4c78a8" }),
        s("text", { x: x(it.value) + 4, y: yy + 12, class: "small" }, o.fmt ? o.fmt(it.value) : pct(it.value)));
    });
    return svg;
  }

  // ------------------------------------------------------------------ header and sections
  function header() {
    const f = D.facts;
    const facts = [
      [f.num_videos, "videos"], [f.num_ground_truth, "ground-truth instances"], [f.num_predictions, "predictions"],
      [D.classes.length, "classes"],
    ].filter(([v]) => v !== null && v !== undefined);
    const bits = facts.map(([v, t]) => [h("b", { text: Number(v).toLocaleString("en-US") }), ` ${t}`, " · "]).flat();
    if (D.subset) bits.push(`subset "${D.subset}" · `);
    bits.push(`generated ${D.generated}`);
    document.body.prepend(
      h("header", { class: "top" }, h("h1", { text: D.title }), h("div", { class: "facts" }, bits),
        D.sources ? h("div", { class: "facts", text: D.sources }) : null),
      h("nav", { class: "sections" },
        D.summary ? h("a", { href: "#summary" }, "Summary") : null,
        D.errors ? h("a", { href: "#errors" }, "Error analysis") : null,
        h("a", { href: "#videos" }, "Videos")));
  }

  function summarySection() {
    const S = D.summary;
    const sec = h("section", { class: "card", id: "summary" }, h("h2", { text: "Detection mAP" }));
    if (D.note) sec.append(h("p", { class: "note", text: D.note }));
    const thr = S.tiou_thresholds;
    sec.append(h("table", { class: "data", id: "map-table" },
      h("thead", {}, h("tr", {}, h("th", { text: "tIoU" }), thr.map((t) => h("th", { text: t.toFixed(2) })), h("th", { text: "Avg" }))),
      h("tbody", {}, h("tr", { class: "big" }, h("td", { text: "mAP (%)" }), S.mAP.map((v) => h("td", { text: pct(v) })),
        h("td", { text: pct(S.average_mAP) })))));
    const st = S.stats, n = (x) => Number(x).toLocaleString("en-US");
    const notes = [`${n(st.num_evaluated)} of ${n(st.num_predictions)} predictions evaluated`];
    if (st.num_ignored_label) notes.push(`${n(st.num_ignored_label)} ignored (labels that are not evaluated classes: ${st.ignored_labels.join(", ")})`);
    if (st.num_unknown_video) notes.push(`${n(st.num_unknown_video)} on ${n(st.num_unknown_videos)} videos absent from the annotations (false positives)`);
    if (st.num_other_subset_video) notes.push(`${n(st.num_other_subset_video)} on videos of another subset (false positives)`);
    if (st.num_gt_videos_without_predictions) notes.push(`${n(st.num_gt_videos_without_predictions)} evaluated videos without any prediction`);
    sec.append(h("p", { class: "note", text: notes.join(" · ") }));
    const rows = D.classes.slice(0, S.per_class_ap.length).map((name, k) => ({
      name, k, n: S.num_gt_per_class[k], ap: S.per_class_ap[k], avg: mean(S.per_class_ap[k]),
    }));
    const cols = [{ name: "Class", key: (r) => r.name, asc: true }, { name: "GT", key: (r) => r.n }]
      .concat(thr.map((t, i) => ({ name: `AP@${t.toFixed(2)}`, key: (r) => r.ap[i], fmt: pct })))
      .concat([{ name: "Avg AP", key: (r) => r.avg, fmt: pct }]);
    const table = sortableTable(cols, rows, { id: "class-table", sortCol: cols.length - 1, dir: -1 });
    const bars = rows.slice().sort((a, b) => b.avg - a.avg).map((r) => ({ label: r.name, value: r.avg, color: classColor(r.k) }));
    sec.append(h("div", { class: "grid" },
      h("div", {}, h("h3", { text: "Per-class AP (%), click a column to sort" }), h("div", { class: "scroll-y" }, table)),
      h("div", {}, h("h3", { text: "Average AP over tIoU thresholds, per class" }), hBarChart(bars, { width: 520 }))));
    return sec;
  }

  function errorSection() {
    const E = D.errors;
    const thr = E.tiou_thresholds;
    const sec = h("section", { class: "card", id: "errors" }, h("h2", { text: "Error analysis (after DETAD, Alwassel et al. ECCV 2018)" }));
    sec.append(h("p", {
      class: "note",
      text: `False positives at a tIoU threshold a, by the ground truth of any class with the highest tIoU in the same video: ` +
        `double detection (tIoU ≥ a, right label, that GT already taken), wrong label (tIoU ≥ a, other label), ` +
        `localization (${E.min_tiou} ≤ tIoU < a, right label), confusion (${E.min_tiou} ≤ tIoU < a, other label), ` +
        `background (tIoU < ${E.min_tiou}). G = number of GT instances of the class; "kG" = the predictions of each ` +
        `class ranked (k-1)G..kG-1 by score. Removing a type drops its false positives from the ranked lists (all predictions). ` +
        `Sensitivity: AP of the GT in one bin (true positives of other bins dropped); AP_N normalises precision to ` +
        `N = ${E.normalized_to.toFixed(1)} GT per class as DETAD does (bins: ${E.bins}).`,
    }));
    const sel = h("select", { id: "error-tiou" }, thr.map((t, i) => h("option", { value: i, text: `tIoU ${t.toFixed(2)}` })),
      h("option", { value: "avg", text: "average over tIoU" }));
    const def = thr.findIndex((t) => Math.abs(t - 0.5) < 1e-9);
    sel.value = def >= 0 ? String(def) : "avg";
    const metric = h("select", { id: "sensitivity-metric" }, h("option", { value: "mAP_N", text: "AP_N (DETAD)" }), h("option", { value: "mAP", text: "AP" }));
    const body = h("div");
    sec.append(h("div", { class: "controls" }, h("label", {}, "Threshold", sel), h("label", {}, "Sensitivity metric", metric),
      legend(OUTCOME_NAMES, OUTCOME_COLORS)), body);
    const at = (arr) => (sel.value === "avg" ? mean(arr) : arr[+sel.value]);
    const avgCounts = (list) => Object.fromEntries(E.outcomes.map((o) => [o, at(list.map((c) => c[o]))]));
    function draw() {
      const bands = E.profile_band_sizes.map((n, k) => {
        const c = avgCounts(E.profile.map((p) => p[k]));
        return { label: `${k + 1}G`, sub: `n=${n}`, parts: E.outcomes.map((o, j) => [n ? c[o] / n : 0, OUTCOME_COLORS[j]]) };
      });
      const top = avgCounts(E.top_false_positives.map((c) => ({ true_positive: 0, ...c })));
      const nTopFp = E.outcomes.slice(1).reduce((p, o) => p + top[o], 0);
      const topItems = E.outcomes.slice(1).map((o, j) => ({ label: OUTCOME_NAMES[j + 1], value: nTopFp ? top[o] / nTopFp : 0, n: top[o], color: OUTCOME_COLORS[j + 1] }));
      const base = at(E.mAP);
      const gains = E.outcomes.slice(1).map((o, j) => ({ label: OUTCOME_NAMES[j + 1].split(" ")[0], value: at(E.mAP_without[o]) - base, color: OUTCOME_COLORS[j + 1] }));
      const maxGain = niceCeil(Math.max(0.001, ...gains.map((g) => g.value)) * 1.05);
      const m = metric.value;
      const sens = ["length", "coverage", "num_instances"].map((name) => {
        const S = E.sensitivity[name];
        const items = S.bins.map((b) => ({ label: b.label, sub: [b.interval, `n=${b.num_ground_truth}`], value: b[m].some((v) => v === null) ? null : at(b[m]), color: "#5b8bd6" }));
        const title = { length: "Action length", coverage: "Coverage (length / video duration)", num_instances: "Instances per video" }[name];
        const base = at(m === "mAP" ? E.mAP : E.mAP_N);
        return h("div", {}, h("h3", { text: `${title}${S.num_unbinned ? ` (${S.num_unbinned} GT without a bin)` : ""}` }),
          barChart(items, { width: 380, height: 220, base, bottom: 50 }),
          h("div", { class: "muted", text: `dashed: all GT, ${pct(base)}` }));
      });
      body.replaceChildren(
        h("div", { class: "grid" },
          h("div", {}, h("h3", { text: "False-positive profile: outcome of the top predictions, per band of G (%)" }),
            barChart(bands, { width: 520, height: 240, bottom: 40 })),
          h("div", {}, h("h3", { text: `Top-ranked false positives (in the top G per class): ${Math.round(nTopFp).toLocaleString("en-US")}` }),
            hBarChart(topItems, { width: 420, left: 130, fmt: (v) => `${(100 * v).toFixed(1)}%` }),
            h("h3", { text: `mAP gain (points) when removing each error type (mAP ${pct(base)})` }),
            barChart(gains, { width: 420, height: 200, max: maxGain, tick: (v) => String(+(100 * v).toFixed(2)), tip: (v) => `+${(100 * v).toFixed(2)}` }))),
        h("h3", { text: `Sensitivity: ${m === "mAP" ? "mAP" : "mAP_N"} (%) of the GT in each bin (under each bar: the bin and its number of GT instances)` }),
        h("div", { class: "grid" }, sens),
        h("h3", { text: "mAP (%) with the false positives of each type removed" }),
        removalTable(at));
    }
    function removalTable(at) {
      const names = ["none"].concat(E.outcomes.slice(1), ["all"]);
      return h("table", { class: "data", id: "removal-table" },
        h("thead", {}, h("tr", {}, h("th", { text: "removed" }), thr.map((t) => h("th", { text: `mAP@${t.toFixed(2)}` })), h("th", { text: "Avg" }), h("th", { text: "gain" }))),
        h("tbody", {}, names.map((n) => {
          const v = n === "none" ? E.mAP : E.mAP_without[n];
          const label = n === "none" ? "nothing" : n === "all" ? "every error type" : OUTCOME_NAMES[E.outcomes.indexOf(n)];
          return h("tr", {}, h("td", { text: label }), v.map((x) => h("td", { text: pct(x) })), h("td", { text: pct(mean(v)) }),
            h("td", { text: n === "none" ? "" : `+${(100 * (mean(v) - mean(E.mAP))).toFixed(2)}` }));
        })));
    }
    sel.addEventListener("change", draw);
    metric.addEventListener("change", draw);
    draw();
    return sec;
  }

  // ------------------------------------------------------------------ videos
  const viewer = { current: null };
  function videoSection() {
    const sec = h("section", { class: "card", id: "videos" }, h("h2", { text: "Videos" }));
    sec.append(h("p", {
      class: "note",
      text: `Open a video: its timeline has one row per class, ground truth (grey; dashed red = not detected by a prediction ` +
        `above the score threshold at tIoU ${D.outcome_tiou}) above the predictions. Hover a segment for its times and score; click ` +
        `it to play the video from its start. Counts in the list are at score ≥ ${D.score_threshold}` +
        (D.has_gt ? ` and tIoU ${D.outcome_tiou}.` : "."),
    }));
    const view = h("div", { id: "viewer" }, h("div", { class: "empty", text: "Click a video in the list below to open its timeline." }));
    const filter = h("input", { type: "text", id: "video-filter", placeholder: "filter by name", size: 30 });
    const cols = [
      { name: "Video", key: (v) => v.name, asc: true },
      { name: "Duration", key: (v) => v.duration, fmt: clock },
      { name: "GT", key: (v) => v.n_gt },
      { name: "Predictions", key: (v) => v.n_pred },
      { name: `≥ ${D.score_threshold}`, key: (v) => v.n_above },
    ];
    if (D.has_gt) cols.push({ name: "TP", key: (v) => v.tp }, { name: "FP", key: (v) => v.fp }, { name: "GT missed", key: (v) => v.missed });
    cols.push({ name: "File", key: (v) => (v.src ? "yes" : "–"), asc: true });
    const table = sortableTable(cols, D.videos, {
      id: "video-list", sortCol: 0, dir: 1,
      rowAttrs: (v) => ({ "data-video": v.name, class: viewer.current === v.name ? "open" : null }),
      onRow: (v) => openVideo(v.name),
    });
    filter.addEventListener("input", () => {
      const q = filter.value.toLowerCase();
      table.setRows(D.videos.filter((v) => v.name.toLowerCase().includes(q)));
    });
    sec.append(view, h("div", { class: "controls" }, h("label", {}, "Filter", filter), h("span", { class: "muted", text: `${D.videos.length} videos` })),
      h("div", { class: "scroll-y" }, table));
    viewer.table = table;
    return sec;
  }

  function loadVideo(v) {
    if (!v.data) v.data = JSON.parse($(v.el).textContent); // lazy: parsed when the video is first opened
    return v.data;
  }

  function openVideo(name) {
    const t0 = performance.now();
    const v = D.videos.find((x) => x.name === name);
    if (!v) return false;
    const d = loadVideo(v);
    viewer.current = name;
    document.querySelectorAll("#video-list tbody tr").forEach((tr) => tr.classList.toggle("open", tr.dataset.video === name));
    history.replaceState(null, "", `#video=${encodeURIComponent(name)}`);
    const nPred = d.ps.length, nGt = d.gs.length;
    // rows: classes with GT or any prediction in this video, in class order
    const present = new Set([...d.gc, ...d.pc]);
    const rows = D.classes.map((c, k) => k).filter((k) => present.has(k));
    const rowOf = new Map(rows.map((k, i) => [k, i]));
    const slider = h("input", { type: "range", id: "threshold", min: 0, max: 1, step: 0.01, value: D.score_threshold });
    const out = h("output", { id: "threshold-value", text: Number(D.score_threshold).toFixed(2) });
    const shown = h("span", { id: "shown-count", class: "muted" });
    const zoom = h("select", { id: "zoom" }, [1, 2, 4, 8, 16, 32].map((z) => h("option", { value: z, text: `${z}×` })));
    const colorBy = h("select", { id: "color-by" }, D.has_gt ? h("option", { value: "outcome", text: `outcome at tIoU ${D.outcome_tiou}` }) : null,
      h("option", { value: "score", text: "score" }), h("option", { value: "class", text: "class" }));
    const legendBox = h("span");
    let player = null;
    if (v.src) {
      player = h("video", { id: "player", controls: true, preload: "auto", src: v.src, muted: true, playsinline: true });
      player.addEventListener("error", () => playerBox.append(h("div", { class: "missing", text: `the browser cannot play ${v.src}` })));
    }
    const now = h("div", { class: "now", id: "now", text: "0:00.0" });
    const playerBox = h("div", { class: "player-box" }, player || h("div", { class: "missing", text: v.missing_reason || "no video file" }), now);
    const labels = s("svg", { width: LABEL_W, height: AXIS + rows.length * ROW + 2 });
    const svg = s("svg", { id: "timeline", "data-duration": v.duration });
    const scroll = h("div", { class: "timeline-scroll", id: "timeline-scroll" }, svg);
    const wrap = h("div", { class: "timeline-wrap" }, h("div", { class: "timeline-labels" }, labels), scroll);
    const head = h("div", { class: "controls" },
      h("h3", { text: name }),
      h("span", { class: "muted", text: `${clock(v.duration)}${v.duration_known ? "" : " (estimated)"} · ${nGt} GT · ${nPred} predictions` }),
      h("label", {}, "Score ≥", slider, out), shown, h("label", {}, "Zoom", zoom), h("label", {}, "Colour", colorBy), legendBox);
    $("viewer").replaceChildren(head, h("div", { class: "viewer-body" }, playerBox, wrap));

    rows.forEach((k, i) => {
      const y = AXIS + i * ROW;
      labels.append(s("text", { x: LABEL_W - 6, y: y + 19, "text-anchor": "end" }, D.classes[k].length > 19 ? D.classes[k].slice(0, 18) + "…" : D.classes[k]),
        s("title", {}, D.classes[k]));
    });
    const gBack = s("g"), gGt = s("g"), gPred = s("g"), gAxis = s("g", { class: "axis" });
    const playhead = s("line", { class: "playhead", y1: AXIS - 4, y2: AXIS + rows.length * ROW });
    svg.append(gBack, gAxis, gGt, gPred, playhead);
    const dur = v.duration > 0 ? v.duration : 1;
    let W = 600, thr = +slider.value, time = 0;
    const X = (t) => (Math.min(Math.max(t, 0), dur) / dur) * W;

    function layout() {
      const base = Math.max(400, scroll.clientWidth - 2);
      W = base * +zoom.value;
      const H = AXIS + rows.length * ROW + 2;
      svg.setAttribute("width", W);
      svg.setAttribute("height", H);
      let bg = "";
      rows.forEach((k, i) => { if (i % 2 === 0) bg += `<rect x="0" y="${AXIS + i * ROW}" width="${W}" height="${ROW}" fill="#f7f8fa"/>`; });
      gBack.innerHTML = bg;
      // ticks: a round step giving about one label per 90 px
      const steps = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
      const step = steps.find((st) => (W / dur) * st >= 90) || 7200;
      let ax = "";
      for (let t = 0; t <= dur + 1e-9; t += step) {
        const x = X(t);
        ax += `<line x1="${x}" x2="${x}" y1="${AXIS - 5}" y2="${H}"/><text x="${x + 2}" y="${AXIS - 8}" class="small">${clock(t)}</text>`;
      }
      gAxis.innerHTML = ax;
      drawGt();
      drawPred();
      setTime(time);
    }
    function rect(cls, i, s0, e0, k, lane, extra) {
      const x = X(s0), w = Math.max(1, X(e0) - x), y = AXIS + rowOf.get(k) * ROW + lane;
      return `<rect class="seg ${cls}" data-i="${i}" x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${lane === GT_Y ? GT_H : PRED_H}"${extra}/>`;
    }
    function drawGt() {
      let m = "";
      for (let i = 0; i < nGt; i++) {
        const missed = D.has_gt && !(d.gm[i] >= 0 && d.gm[i] >= thr);
        m += rect(missed ? "gt missed" : "gt", i, d.gs[i], d.ge[i], d.gc[i], GT_Y, missed ? "" : ' fill="#59606e"');
      }
      gGt.innerHTML = m;
    }
    function predColor(i) {
      if (colorBy.value === "outcome") return d.po[i] === "-" ? "#bbbbbb" : OUTCOME_COLORS[+d.po[i]];
      if (colorBy.value === "class") return classColor(d.pc[i]);
      return viridis(d.pp[i]);
    }
    function countAbove(t) { // predictions are sorted by decreasing score: the shown ones are a prefix
      let lo = 0, hi = nPred;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (d.pp[mid] >= t) lo = mid + 1; else hi = mid; }
      return lo;
    }
    function drawPred() {
      const n = countAbove(thr);
      let m = "";
      for (let i = n - 1; i >= 0; i--) { // lowest score first: the best are drawn on top
        m += rect("pred", i, d.ps[i], d.pe[i], d.pc[i], PRED_Y, ` fill="${predColor(i)}" fill-opacity="${(0.35 + 0.65 * d.pp[i]).toFixed(2)}"`);
      }
      gPred.innerHTML = m;
      shown.textContent = `${n} of ${nPred} predictions shown`;
      svg.dataset.shown = n;
      if (colorBy.value === "outcome") legendBox.replaceChildren(legend(OUTCOME_NAMES, OUTCOME_COLORS));
      else if (colorBy.value === "score") legendBox.replaceChildren(legend(["score 0", "0.5", "1"], [viridis(0), viridis(0.5), viridis(1)]));
      else legendBox.replaceChildren();
    }
    function setTime(t) {
      time = t;
      const x = X(t);
      playhead.setAttribute("x1", x);
      playhead.setAttribute("x2", x);
      playhead.dataset.time = t;
      now.textContent = `${clock(t)} / ${clock(dur)}`;
    }
    function follow() { // keep the playhead in view while playing
      const x = X(time);
      if (x < scroll.scrollLeft || x > scroll.scrollLeft + scroll.clientWidth - 20) scroll.scrollLeft = Math.max(0, x - scroll.clientWidth / 3);
    }
    function seek(t) {
      setTime(t);
      if (player) player.currentTime = t;
    }
    slider.addEventListener("input", () => {
      thr = +slider.value;
      out.textContent = thr.toFixed(2);
      drawPred();
      drawGt();
    });
    zoom.addEventListener("change", layout);
    colorBy.addEventListener("change", drawPred);
    const tip = $("tooltip");
    svg.addEventListener("mousemove", (ev) => {
      const r = ev.target;
      if (!r.classList || !r.classList.contains("seg")) { tip.style.display = "none"; return; }
      const i = +r.dataset.i, isGt = r.classList.contains("gt");
      const st = isGt ? d.gs[i] : d.ps[i], en = isGt ? d.ge[i] : d.pe[i], k = isGt ? d.gc[i] : d.pc[i];
      let html = `<b>${isGt ? "Ground truth" : "Prediction"}</b> · ${esc(D.classes[k])}<br>start ${st.toFixed(2)} s · end ${en.toFixed(2)} s · ${(en - st).toFixed(2)} s`;
      if (!isGt) html += `<br>score ${d.pp[i].toFixed(4)}` + (D.has_gt ? ` · ${d.po[i] === "-" ? "not evaluated" : OUTCOME_NAMES[+d.po[i]]} @${D.outcome_tiou}` : "");
      else if (D.has_gt) html += `<br>${d.gm[i] >= 0 ? `detected at tIoU ${D.outcome_tiou} by a prediction of score ${d.gm[i].toFixed(4)}` : `not detected at tIoU ${D.outcome_tiou}`}`;
      tip.innerHTML = html + "<br><span style='opacity:.7'>click: play from the start</span>";
      tip.style.display = "block";
      tip.style.left = `${Math.min(ev.clientX + 14, window.innerWidth - 370)}px`;
      tip.style.top = `${ev.clientY + 14}px`;
    });
    svg.addEventListener("mouseleave", () => { tip.style.display = "none"; });
    svg.addEventListener("click", (ev) => {
      const r = ev.target;
      if (r.classList && r.classList.contains("seg")) {
        const i = +r.dataset.i;
        seek(r.classList.contains("gt") ? d.gs[i] : d.ps[i]);
      } else {
        const box = svg.getBoundingClientRect();
        seek(((ev.clientX - box.left) / W) * dur);
      }
    });
    if (player) {
      let raf = 0;
      const tick = () => { setTime(player.currentTime); follow(); raf = player.paused ? 0 : requestAnimationFrame(tick); };
      player.addEventListener("timeupdate", () => setTime(player.currentTime));
      player.addEventListener("seeking", () => setTime(player.currentTime));
      player.addEventListener("play", () => { if (!raf) raf = requestAnimationFrame(tick); });
    }
    viewer.layout = layout;
    layout();
    viewer.lastOpenMs = performance.now() - t0;
    return true;
  }

  // ------------------------------------------------------------------ page
  function build() {
    header();
    const main = $("app");
    if (D.summary) main.append(summarySection());
    else if (D.note) main.append(h("section", { class: "card" }, h("p", { class: "note", text: D.note })));
    if (D.errors) main.append(errorSection());
    main.append(videoSection());
    document.body.append(h("div", { id: "tooltip" }));
    window.addEventListener("resize", () => { if (viewer.layout) viewer.layout(); });
    const m = /^#video=(.*)$/.exec(location.hash);
    if (m && openVideo(decodeURIComponent(m[1]))) $("viewer").scrollIntoView();
  }
  build();
  window.adatadReport = {
    openVideo,
    readyMs: performance.now(),
    lastOpenMs: () => viewer.lastOpenMs,
    data: D,
  };
  document.documentElement.dataset.ready = "1";
})();
