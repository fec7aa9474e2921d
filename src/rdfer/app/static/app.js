// rdfer app: the page. Plain JavaScript, no library, nothing loaded from anywhere but this server.
"use strict";

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function showMessage(box, text, kind = "error") {
  box.hidden = !text;
  box.className = "message " + kind;
  box.textContent = text || "";
}

// The server's page token, written into this page when it was served: every request that changes
// anything carries it (X-RDFER-Token), so that no other site's page can make one.
const PAGE_TOKEN = (document.querySelector('meta[name="rdfer-token"]') || {}).content || "";

// fetch JSON; the server's {"error": ...} becomes an Error with that one line.
async function api(method, url, body) {
  let response;
  const headers = {"X-RDFER-Token": PAGE_TOKEN};
  if (body) headers["Content-Type"] = "application/json";
  try {
    response = await fetch(url, {method, headers, body: body ? JSON.stringify(body) : undefined});
  } catch (e) {
    throw new Error("the rdfer app server does not answer (was it stopped?)");
  }
  let data = null;
  try { data = await response.json(); } catch (e) { /* not JSON */ }
  if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  return data;
}

// ------------------------------------------------------------------ tabs

function showPage(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.page === name);
  for (const page of document.querySelectorAll(".page")) page.hidden = page.id !== "page-" + name;
  if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
}

// ------------------------------------------------------------------ predict page

let chosenFiles = [];
let maxUploadBytes = Infinity;  // from /api/info

function setChosen(files) {
  chosenFiles = Array.from(files);
  $("chosen").textContent = chosenFiles.length ? chosenFiles.map((f) => f.name).join(", ") : "no files chosen";
}

function uploadFile(jobId, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", `/api/predict/jobs/${jobId}/files?name=${encodeURIComponent(file.name)}`);
    xhr.setRequestHeader("X-RDFER-Token", PAGE_TOKEN);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new Error((data && data.error) || `${file.name}: upload failed (${xhr.status})`));
    };
    xhr.onerror = () => reject(new Error(`${file.name}: upload failed (the server does not answer)`));
    xhr.send(file);
  });
}

function setProgress(fraction, text) {
  $("progress-box").hidden = false;
  $("progress").value = fraction;
  $("progress-text").textContent = text;
}

async function runPrediction() {
  const message = $("predict-message");
  const button = $("predict-button");
  showMessage(message, "");
  const folder = $("folder").value.trim();
  const useCheckpoint = $("model-checkpoint").checked;
  const checkpoint = useCheckpoint ? $("checkpoint").value.trim() : null;
  if (useCheckpoint && !checkpoint) return showMessage(message, "give the path of the checkpoint file, or choose the built-in model");
  if (!chosenFiles.length && !folder) return showMessage(message, "drop videos or images here, or give a folder");
  // Too large: said before sending it (a browser that is still sending may not read the server's refusal).
  const tooBig = chosenFiles.find((f) => f.size > maxUploadBytes);
  if (tooBig) {
    return showMessage(message, `${tooBig.name} is larger than the upload limit of ` +
      `${Math.round(maxUploadBytes / 2 ** 20)} MB; give its folder instead (the server reads it in place) ` +
      "or restart with --max-upload-mb");
  }
  button.disabled = true;
  $("results").replaceChildren();
  $("job-downloads").replaceChildren();
  try {
    const job = await api("POST", "/api/predict/jobs");
    for (const [i, file] of chosenFiles.entries()) {
      await uploadFile(job.id, file, (f) => setProgress((i + f) / chosenFiles.length,
        `uploading ${file.name} (${i + 1} of ${chosenFiles.length})`));
    }
    setProgress(0, "starting");
    await api("POST", `/api/predict/jobs/${job.id}/start`, {checkpoint, folder: folder || null});
    await follow(job.id);
  } catch (e) {
    showMessage(message, e.message);
    $("progress-box").hidden = true;
  } finally {
    button.disabled = false;
  }
}

async function follow(jobId) {
  const shown = new Set();
  for (;;) {
    const job = await api("GET", `/api/predict/jobs/${jobId}`);
    for (const result of job.results) {
      if (!shown.has(result.index)) { shown.add(result.index); $("results").append(renderVideo(result)); }
    }
    const seconds = job.elapsed_s ? ` (${job.elapsed_s.toFixed(0)} s)` : "";
    if (job.state === "running") {
      // Inside the video in progress: its frames done of the frames the file announces, and the time left.
      const f = job.frames && job.frames.video && job.current && job.frames.video.endsWith(job.current) ? job.frames : null;
      const part = f && f.total ? Math.min(f.done / f.total, 1) : 0;
      const inside = f ? `, ${f.done}${f.total ? " of " + f.total : ""} frames` +
        (f.left_s != null ? `, about ${Math.ceil(f.left_s)} s left` : "") : "";
      setProgress((job.done + part) / job.total,
        `video ${job.done + 1} of ${job.total}: ${job.current || ""}${inside}${seconds}`);
    } else {
      setProgress(1, `${job.done} of ${job.total} video(s) done${seconds}`);
      renderJobDownloads(job);
      if (job.state === "failed") showMessage($("predict-message"), job.message);
      return;
    }
    await new Promise((r) => setTimeout(r, 400));
  }
}

function renderJobDownloads(job) {
  const box = $("job-downloads");
  box.replaceChildren();
  for (const [name, url] of Object.entries(job.downloads)) {
    box.append(el("a", {href: url + "?download=1", class: "download", "data-kind": name, text: "download " + name}));
  }
}

const pct = (p) => (100 * p).toFixed(1) + "%";

function renderVideo(result) {
  const card = el("div", {class: "card video", "data-status": result.status, "data-name": result.name});
  card.append(el("h3", {}, result.name + " ", el("span", {class: "status-" + result.status, text: result.status})));
  if (result.status !== "ok") {
    card.append(el("p", {class: "status-" + result.status + " problem", text: result.error || result.status}));
  }
  if (result.warning) card.append(el("p", {class: "warning", text: "warning: " + result.warning}));
  const photo = result.media === "image";
  const faces = `${result.tracks.length} face${result.tracks.length === 1 ? "" : "s"}`;
  card.append(el("p", {class: "muted", text: (photo ? `a photo, ${faces}` :
    `${result.num_frames} frames` + (result.fps ? ` at ${result.fps.toFixed(1)} fps` : "") +
    `, a face in ${result.frames_with_face}, ${faces}`) + `. Model: ${result.model || ""}`}));
  if (result.summary) card.append(el("p", {class: "summary", text: result.summary}));
  // Every face's timeline on the same axis: 0 to the video's duration, its shot cuts marked.
  const axis = {duration: result.duration_s, cuts: result.cuts || []};
  for (const track of result.tracks) card.append(renderTrack(track, result.tracks.length, photo, axis));
  const downloads = el("p", {class: "downloads"});
  for (const [kind, url] of Object.entries(result.downloads)) {
    downloads.append(el("a", {href: url + "?download=1", class: "download", "data-kind": kind, text: "download " + kind}));
  }
  card.append(downloads);
  return card;
}

function renderTrack(track, count, photo, axis) {
  const box = el("div", {class: "track", "data-track": track.id});
  const trust = track.trust == null ? "undefined (fewer than 4 face frames)" : track.trust.toFixed(2);
  const key = track.key_expression;
  box.append(el("div", {class: "facts"},
    count > 1 ? el("span", {class: "face", text: `face ${track.id}` + (track.main ? " (main face)" : "")}) : null,
    el("span", {class: "label", text: track.label}),
    el("span", {class: "p", text: `p = ${track.probabilities[track.label].toFixed(2)}`}),
    el("span", {class: "trust", text: (track.trust_name === "trust" ? "trust" : `trust (${track.trust_name})`) +
                                      `: ${trust}`}),
    track.trust_name === "trust" && track.agreement != null ?
      el("span", {class: "agreement", text: `agreement of the 4 clips: ${track.agreement.toFixed(2)}`}) : null,
    key && !photo ? el("span", {class: "key", text: `key expression ${key.start_s.toFixed(2)}-${key.end_s.toFixed(2)} s`})
      : null));
  const probs = el("div", {class: "probs"});
  track.classes.forEach((c, i) => {
    const p = track.probabilities[c];
    const bar = el("div", {class: "bar"}, el("span", {style: `width:${pct(p)};background:${COLOURS[i % 10]}`}));
    probs.append(el("span", {text: c}), bar, el("span", {text: pct(p)}));
  });
  box.append(probs);
  if (track.thumbnails.length) {
    box.append(el("div", {class: "thumbs"}, ...track.thumbnails.map((t) =>
      el("figure", {}, el("img", {src: t.url, alt: `face at ${t.time_s.toFixed(1)} s`}),
         photo ? null : el("figcaption", {text: t.time_s.toFixed(1) + " s"})))));
  }
  if (track.timeline.time_s.length > 1) box.append(timelinePlot(track, axis || {}));
  else if (!photo) box.append(el("p", {class: "muted", text: "a face on a single frame: no timeline"}));
  return box;
}

// ------------------------------------------------------------------ the timeline: a small SVG plot of our own

function timelinePlot(track, axis) {
  const W = 900, H = 240, L = 40, R = 10, T = 10, B = 28;
  const times = track.timeline.time_s;
  // The video's whole length (the same for every face of a video), else this face's last second.
  const tMax = axis.duration || (times.length ? times[times.length - 1] : 1);
  const cuts = axis.cuts || [];
  let view = [0, Math.max(tMax, 1e-3)];
  const steps = times.slice(1).map((t, j) => t - times[j]).sort((a, b) => a - b);
  const gap = steps.length ? 3 * steps[Math.floor(steps.length / 2)] : Infinity;  // 3 frame steps
  const wrap = el("div", {class: "timeline-box"});
  const svg = svgEl("svg", {class: "timeline", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none"});
  const readout = el("span", {class: "muted readout"});
  const x = (t) => L + (t - view[0]) / (view[1] - view[0]) * (W - L - R);
  const y = (p) => T + (1 - p) * (H - T - B);

  function draw() {
    svg.replaceChildren();
    const clip = svgEl("clipPath", {id: "c" + Math.random().toString(36).slice(2)});
    clip.append(svgEl("rect", {x: L, y: T, width: W - L - R, height: H - T - B}));
    svg.append(clip);
    const plot = svgEl("g", {"clip-path": `url(#${clip.id})`});
    if (track.key_expression) {
      const k = track.key_expression;
      plot.append(svgEl("rect", {class: "key-window", x: x(k.start_s), y: T, width: Math.max(1, x(k.end_s) - x(k.start_s)),
                                 height: H - T - B, fill: "gold", opacity: 0.3}));
    }
    track.classes.forEach((c, i) => {
      const values = track.timeline.probabilities[c];
      let d = "", pen = false;
      for (let j = 0; j < times.length; j++) {
        if (values[j] == null) { pen = false; continue; }
        if (j > 0 && times[j] - times[j - 1] > gap) pen = false;  // the face was off screen: no line across
        d += (pen ? "L" : "M") + x(times[j]).toFixed(1) + "," + y(values[j]).toFixed(1);
        pen = true;
      }
      const winner = c === track.label;
      plot.append(svgEl("path", {class: "series", "data-class": c, d, fill: "none", stroke: COLOURS[i % 10],
                                 "stroke-width": winner ? 2.6 : 1.2, opacity: winner ? 1 : 0.75}));
    });
    for (const cut of cuts) {
      plot.append(svgEl("line", {class: "cut", "data-time": cut, x1: x(cut), x2: x(cut), y1: T, y2: H - B,
                                 stroke: "#555", "stroke-dasharray": "4 3"}));
    }
    svg.append(plot);
    for (const p of [0, 0.5, 1]) {
      svg.append(svgEl("line", {x1: L, x2: W - R, y1: y(p), y2: y(p), stroke: "#ddd"}));
      const label = svgEl("text", {x: L - 6, y: y(p) + 4, "text-anchor": "end"}); label.textContent = p; svg.append(label);
    }
    const span = view[1] - view[0];
    const step = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600].find((s) => span / s <= 10) || 1200;
    for (let t = Math.ceil(view[0] / step) * step; t <= view[1] + 1e-9; t += step) {
      svg.append(svgEl("line", {x1: x(t), x2: x(t), y1: H - B, y2: H - B + 4, stroke: "#888"}));
      const label = svgEl("text", {x: x(t), y: H - 8, "text-anchor": "middle"});
      label.textContent = t.toFixed(step >= 1 ? 0 : step >= 0.1 ? 1 : 2) + " s"; svg.append(label);
    }
    svg.append(svgEl("rect", {x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#bbb"}));
  }

  function zoom(factor, centre) {
    const full = Math.max(tMax, 1e-3);
    let span = Math.min(full, Math.max((view[1] - view[0]) * factor, full / 200, 0.05));
    let start = centre - (centre - view[0]) * span / (view[1] - view[0]);
    start = Math.max(0, Math.min(start, full - span));
    view = [start, start + span];
    draw();
  }
  const timeAt = (event) => {
    const box = svg.getBoundingClientRect();
    const px = (event.clientX - box.left) / box.width * W;
    return view[0] + (px - L) / (W - L - R) * (view[1] - view[0]);
  };
  svg.addEventListener("wheel", (e) => { e.preventDefault(); zoom(e.deltaY < 0 ? 0.8 : 1.25, timeAt(e)); });
  let dragging = null;
  svg.addEventListener("mousedown", (e) => { dragging = {t: timeAt(e), view: view.slice()}; });
  window.addEventListener("mouseup", () => { dragging = null; });
  svg.addEventListener("mousemove", (e) => {
    const t = timeAt(e);
    if (dragging) {
      const shift = dragging.t - (dragging.view[0] + (t - view[0]));
      const span = dragging.view[1] - dragging.view[0];
      const start = Math.max(0, Math.min(dragging.view[0] + shift, Math.max(tMax, 1e-3) - span));
      view = [start, start + span];
      draw();
      return;
    }
    let j = 0;
    while (j + 1 < times.length && times[j + 1] <= t) j++;
    const label = track.timeline.label[j];
    readout.textContent = times.length ? `${times[j].toFixed(2)} s: ` + (label ?
      `${label} ${(track.timeline.probabilities[label][j] * 100).toFixed(0)}%` : "no face") : "";
  });
  svg.addEventListener("dblclick", () => { view = [0, Math.max(tMax, 1e-3)]; draw(); });
  draw();

  const legend = el("div", {class: "legend"}, ...track.classes.map((c, i) =>
    el("span", {}, el("i", {style: `background:${COLOURS[i % 10]}`}), c + (c === track.label ? " (label)" : ""))),
    el("span", {}, el("i", {style: "background:gold;opacity:0.5;height:0.8em"}), "key expression"),
    cuts.length ? el("span", {}, el("i", {style: "background:#555;width:2px"}), "shot cut") : null);
  const zoomIn = el("button", {class: "zoom", text: "zoom in"});
  const zoomOut = el("button", {class: "zoom", text: "zoom out"});
  const reset = el("button", {class: "zoom", text: "whole video"});
  zoomIn.onclick = () => zoom(0.5, (view[0] + view[1]) / 2);
  zoomOut.onclick = () => zoom(2, (view[0] + view[1]) / 2);
  reset.onclick = () => { view = [0, Math.max(tMax, 1e-3)]; draw(); };
  wrap.append(el("p", {class: "zoom"}, "Timeline: probability of each class per frame (wheel or buttons to zoom, " +
                  "drag to move, double-click for the whole video) ", zoomIn, zoomOut, reset, " ", readout), svg, legend);
  return wrap;
}

// ------------------------------------------------------------------ audit page

let audit = null;  // {key, rows, classes, kinds, ...}

async function openAudit(folder) {
  const message = $("audit-message");
  showMessage(message, "");
  if (!folder) return showMessage(message, "give the path of a folder written by rdfer audit --out FOLDER");
  try {
    audit = await api("POST", "/api/audit/open", {folder});
  } catch (e) {
    audit = null;
    $("audit-summary").hidden = true;
    $("audit-list").replaceChildren();
    return showMessage(message, e.message);
  }
  localStorage.setItem("rdfer-audit-folder", folder);
  $("decisions-file").textContent = audit.decisions_file;
  $("apply-command").textContent = audit.apply_command;
  fillSelect($("filter-class"), audit.classes);
  fillSelect($("filter-kind"), audit.kinds);
  $("audit-summary").hidden = false;
  renderAudit();
}

function fillSelect(select, values) {
  const keep = select.value;
  select.replaceChildren(el("option", {value: "", text: "all"}), ...values.map((v) => el("option", {value: v, text: v})));
  if (values.includes(keep)) select.value = keep;
}

function updateCounts() {
  const decided = audit.rows.filter((r) => r.decision).length;
  $("audit-count").textContent = `${audit.rows.length} flagged clips (by score, highest first), ${decided} decided`;
  $("decisions-download").href = audit.decisions_url + "?download=1";
  $("decisions-download").hidden = decided === 0;
}

function renderAudit() {
  const cls = $("filter-class").value, kind = $("filter-kind").value, decision = $("filter-decision").value;
  const rows = audit.rows.filter((r) => (!cls || r.given_label === cls) && (!kind || r.kind === kind) &&
    (!decision || (decision === "decided") === Boolean(r.decision)));
  $("shown-count").textContent = `${rows.length} shown`;
  $("audit-list").replaceChildren(...rows.map(renderClip));
  updateCounts();
}

const fmt = (v, digits = 2) => (v == null ? "-" : v.toFixed(digits));

function renderClip(row) {
  const node = el("div", {class: "clip" + (row.decision ? " decided-" + row.decision : ""), "data-id": row.id});
  const img = el("img", {loading: "lazy", alt: `frames of clip ${row.id}`,
                         src: `/api/audit/${audit.key}/preview?id=${encodeURIComponent(row.id)}`});
  const frames = el("div", {class: "frames"}, img);
  img.onerror = async () => {
    let why = "no frames";
    try { why = (await (await fetch(img.src)).json()).error; } catch (e) { /* keep the short text */ }
    frames.replaceChildren(el("p", {class: "noframes", text: why}));
  };
  const select = el("select", {class: "relabel-to"}, ...audit.classes.map((c) => el("option", {value: c, text: c})));
  select.value = row.new_label || (audit.classes.includes(row.suggested_label) ? row.suggested_label : audit.classes[0]);
  const button = (text, cls, handler) => { const b = el("button", {class: cls, text}); b.onclick = handler; return b; };
  const status = el("span", {class: "decision", text: describe(row)});
  const decide = async (decision) => {
    try {
      const done = await api("POST", `/api/audit/${audit.key}/decide`,
                             {id: row.id, decision, new_label: decision === "relabel" ? select.value : ""});
      row.decision = done.decision; row.new_label = done.new_label;
      node.className = "clip" + (row.decision ? " decided-" + row.decision : "");
      status.textContent = describe(row);
      showMessage($("audit-message"), "");
      updateCounts();
    } catch (e) {
      showMessage($("audit-message"), e.message);
    }
  };
  node.append(frames, el("div", {class: "info"},
    el("p", {}, el("span", {class: "ids", text: `clip ${row.id}`}), " ",
       el("span", {class: "kind kind-" + row.kind.replace(/\s+/g, "-"), text: row.kind || "?"})),
    el("p", {}, "given ", el("b", {class: "given", text: row.given_label}), " \u2192 suggested ",
       el("b", {class: "suggested", text: row.suggested_label || "-"}),
       ` (p ${fmt(row.p_suggested)}); agreement ${fmt(row.agreement)}; score ${fmt(row.score, 3)}`),
    row.flagged_by.length ? el("p", {class: "muted flagged", text: "flagged by " + row.flagged_by.join(", ")}) : null,
    el("p", {class: "actions"},
       button("keep", "keep", () => decide("keep")),
       button("relabel to", "relabel", () => decide("relabel")), select, " ",
       button("drop", "drop", () => decide("drop")),
       button("undo", "undo", () => decide("")), status)));
  return node;
}

function describe(row) {
  if (!row.decision) return "undecided";
  return row.decision === "relabel" ? `relabel \u2192 ${row.new_label}` : row.decision;
}

// ------------------------------------------------------------------ start

document.addEventListener("DOMContentLoaded", async () => {
  for (const tab of document.querySelectorAll(".tab")) tab.onclick = () => showPage(tab.dataset.page);
  showPage(location.hash === "#audit" ? "audit" : "predict");
  $("files").onchange = (e) => setChosen(e.target.files);
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); setChosen(e.dataTransfer.files); });
  $("checkpoint").addEventListener("input", () => { $("model-checkpoint").checked = true; });
  $("predict-button").onclick = runPrediction;
  $("audit-open").onclick = () => openAudit($("audit-folder").value.trim());
  $("audit-folder").addEventListener("keydown", (e) => { if (e.key === "Enter") $("audit-open").click(); });
  for (const id of ["filter-class", "filter-kind", "filter-decision"]) $(id).onchange = renderAudit;
  try {
    const info = await api("GET", "/api/info");
    $("work-folder").textContent = "work folder: " + info.work_folder;
    maxUploadBytes = info.max_upload_mb * 2 ** 20;
  } catch (e) { showMessage($("predict-message"), e.message); }
  const saved = localStorage.getItem("rdfer-audit-folder");
  if (saved) { $("audit-folder").value = saved; openAudit(saved); }
});
