// rnnlab serve: the page's script. Plain JavaScript, no library, no build step, no network but this server.
//
// Flow: pointer strokes on #pad → (debounced) the pad as a PNG → POST /api/read → each model's reading is
// drawn; when the drawing settles the page asks again with ?gates=1&saliency=1 for the LSTMs' gates and the
// rows that mattered. The slider `t` (1..28) picks how many rows have been read; every view (row highlight,
// bars, chart marker, heatmap markers) follows it.
//
// With the models' weights in the page (`rnnlab serve --export DIR`: window.RNNLAB_EXPORT, from
// models/manifest.js) there is no server: reader.js reads the pad in the browser, gates and saliency included.
"use strict";

const ROWS = 28;
const LINE_WIDTH = 18;           // pad pixels; ~10% of a digit drawn 200 px tall, like MNIST's strokes
const READ_WHILE_DRAWING_MS = 150; // at most one reading per this while a stroke goes on
const SETTLE_MS = 350;           // no change for this long: ask for the gates too
const PLAY_STEP_MS = 140;
const CLASS_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const GATE_NAMES = {i: "input gate i", f: "forget gate f", o: "output gate o", g: "candidate g", c: "cell state c"};

const state = {
  models: [],          // from GET /api/models
  strokes: [],         // [[{x, y}, ...], ...] in pad pixels
  drawing: null,       // the stroke under the pointer
  upload: null,        // a File shown on the pad until the next stroke or Clear
  reading: null,       // the last answer of /api/read
  t: ROWS,
  playing: null,       // interval id while Play runs
  sent: 0,             // request counter: an older answer never replaces a newer one
  shown: 0,
  lastReadAt: 0,
  readTimer: null,
  settleTimer: null,
  controller: null,    // aborts a superseded reading still in flight
  local: null,         // in-browser models (reader.js) when the weights are in the page; null: ask the server
  uploadGray: null,    // an uploaded picture's luminance, for the in-browser reading
};

const $ = (selector, root = document) => root.querySelector(selector);
const pad = $("#pad");
const padContext = pad.getContext("2d", {willReadFrequently: true});  // read back for every request
const seen = $("#seen");
const seenContext = seen.getContext("2d");

// ---- drawing ---------------------------------------------------------------------------------------

function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return {x: (event.clientX - box.left) * pad.width / box.width, y: (event.clientY - box.top) * pad.height / box.height};
}

function strokePath(points) {
  // A smooth curve: quadratic segments through the midpoints of successive points.
  padContext.beginPath();
  padContext.moveTo(points[0].x, points[0].y);
  if (points.length === 1) {
    padContext.lineTo(points[0].x + 0.01, points[0].y);
  }
  for (let k = 1; k < points.length - 1; k++) {
    const mid = {x: (points[k].x + points[k + 1].x) / 2, y: (points[k].y + points[k + 1].y) / 2};
    padContext.quadraticCurveTo(points[k].x, points[k].y, mid.x, mid.y);
  }
  if (points.length > 1) {
    const last = points[points.length - 1];
    padContext.lineTo(last.x, last.y);
  }
  padContext.stroke();
}

function redrawPad() {
  padContext.fillStyle = "#000";
  padContext.fillRect(0, 0, pad.width, pad.height);
  padContext.strokeStyle = "#fff";
  padContext.lineWidth = LINE_WIDTH;
  padContext.lineCap = "round";
  padContext.lineJoin = "round";
  for (const points of state.strokes) strokePath(points);
  if (state.drawing) strokePath(state.drawing);
  $("#undo").disabled = state.strokes.length === 0;
  $("#clear").disabled = state.strokes.length === 0 && !state.upload;
}

function startStroke(event) {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault();  // no text selection, no scrolling, no synthetic mouse events
  pad.setPointerCapture(event.pointerId);
  if (state.upload) {  // drawing starts a new digit: the uploaded picture goes
    state.upload = null;
    state.strokes = [];
  }
  state.drawing = [padPoint(event)];
  redrawPad();
  scheduleRead();
}

function moveStroke(event) {
  if (!state.drawing) return;
  event.preventDefault();
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of (events.length ? events : [event])) state.drawing.push(padPoint(e));
  redrawPad();
  scheduleRead();
}

function endStroke(event) {
  if (!state.drawing) return;
  event.preventDefault();
  state.strokes.push(state.drawing);
  state.drawing = null;
  redrawPad();
  readNow(false);
  scheduleSettled();
}

pad.addEventListener("pointerdown", startStroke);
pad.addEventListener("pointermove", moveStroke);
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);
// Belt and braces for browsers that start a scroll before pointer events decide: a touch on the pad never scrolls.
pad.addEventListener("touchstart", (e) => e.preventDefault(), {passive: false});
pad.addEventListener("touchmove", (e) => e.preventDefault(), {passive: false});

$("#undo").addEventListener("click", () => {
  state.strokes.pop();
  redrawPad();
  afterEdit();
});
$("#clear").addEventListener("click", () => {
  state.strokes = [];
  state.upload = null;
  redrawPad();
  afterEdit();
});

$("#upload").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  event.target.value = "";  // choosing the same file again still fires
  if (!file) return;
  state.upload = file;
  state.strokes = [];
  redrawPad();
  try {  // show it on the pad, fitted; what is read is the file itself, converted on the server
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    const w = bitmap.width * scale, h = bitmap.height * scale;
    padContext.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  } catch (error) {
    // The browser cannot show it; the server will say whether it can read it.
  }
  $("#clear").disabled = false;
  if (state.local) state.uploadGray = await pictureLuminance(file);
  readNow(true);
});

function afterEdit() {
  if (state.strokes.length === 0 && !state.upload) {
    clearReading("Draw one digit.");
    return;
  }
  readNow(false);
  scheduleSettled();
}

// ---- asking the server -----------------------------------------------------------------------------

function wantsGates() {  // the settled reading adds the LSTMs' gates and every model's saliency
  return state.models.length > 0 && !state.local;
}

function scheduleRead() {
  // While drawing: a reading at most every READ_WHILE_DRAWING_MS, and one shortly after the last move.
  clearTimeout(state.readTimer);
  clearTimeout(state.settleTimer);
  const wait = Math.max(0, READ_WHILE_DRAWING_MS - (performance.now() - state.lastReadAt));
  state.readTimer = setTimeout(() => readNow(false), wait);
}

function scheduleSettled() {
  clearTimeout(state.settleTimer);
  if (!wantsGates()) return;
  state.settleTimer = setTimeout(() => readNow(true), SETTLE_MS);
}

const MARGIN = 12;  // black pad pixels kept around the ink

function padBlob() {
  // The part of the pad with ink, plus a black margin, as a grayscale PNG. The server crops to the ink
  // anyway (and reads the background from the border, black either way), so the 28×28 image is the same
  // as for the whole pad; the picture to send and decode is about half the size, and a third of that
  // again for one gray byte per pixel instead of the canvas's RGBA.
  const points = state.strokes.flat().concat(state.drawing || []);
  const reach = LINE_WIDTH / 2 + 2 + MARGIN;
  const left = Math.max(0, Math.floor(Math.min(...points.map((p) => p.x)) - reach));
  const top = Math.max(0, Math.floor(Math.min(...points.map((p) => p.y)) - reach));
  const right = Math.min(pad.width, Math.ceil(Math.max(...points.map((p) => p.x)) + reach));
  const bottom = Math.min(pad.height, Math.ceil(Math.max(...points.map((p) => p.y)) + reach));
  const pixels = padContext.getImageData(left, top, Math.max(1, right - left), Math.max(1, bottom - top));
  if (typeof CompressionStream === "function") return grayPng(pixels);
  const crop = document.createElement("canvas");  // an older browser: the canvas's own (RGBA) PNG
  crop.width = pixels.width;
  crop.height = pixels.height;
  crop.getContext("2d").putImageData(pixels, 0, 0);
  return new Promise((resolve) => crop.toBlob(resolve, "image/png"));
}

// ---- a grayscale PNG writer (the canvas API writes RGBA only) ------------------------------------------
// PNG = signature, IHDR (size, 8-bit gray), IDAT (zlib-deflated rows, each led by filter byte 0), IEND;
// each chunk is length, type, data, CRC-32 of type and data. The pad is white ink on black, so R = G = B
// and the red channel is the gray value: the server reads exactly the pixels the RGBA PNG would give.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (let k = 0; k < bytes.length; k++) c = CRC_TABLE[(c ^ bytes[k]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const chunk = new Uint8Array(12 + data.length);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, data.length);
  for (let k = 0; k < 4; k++) chunk[4 + k] = type.charCodeAt(k);
  chunk.set(data, 8);
  view.setUint32(8 + data.length, crc32(chunk.subarray(4, 8 + data.length)));
  return chunk;
}

async function grayPng(image) {
  const {width, height, data} = image;
  const rows = new Uint8Array((width + 1) * height);  // zero-filled: filter type 0 (none) on every row
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) rows[y * (width + 1) + 1 + x] = data[4 * (y * width + x)];
  }
  const zlib = new Blob([rows]).stream().pipeThrough(new CompressionStream("deflate"));  // "deflate" is zlib's format
  const deflated = new Uint8Array(await new Response(zlib).arrayBuffer());
  const header = new Uint8Array(13);
  new DataView(header.buffer).setUint32(0, width);
  new DataView(header.buffer).setUint32(4, height);
  header[8] = 8;  // bit depth; colour type (header[9]) 0 = grayscale, no interlace
  const signature = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
  return new Blob([signature, pngChunk("IHDR", header), pngChunk("IDAT", deflated), pngChunk("IEND", new Uint8Array(0))],
                  {type: "image/png"});
}

async function readNow(gates) {
  clearTimeout(state.readTimer);
  const strokes = state.strokes.length + (state.drawing ? 1 : 0);
  if (strokes === 0 && !state.upload) return;
  if (state.local) {
    readLocally(strokes);
    return;
  }
  state.lastReadAt = performance.now();
  const id = ++state.sent;
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  let body, headers = {};
  if (state.upload && strokes === 0) {
    body = new FormData();
    body.append("file", state.upload);
  } else {
    body = await padBlob();
    headers = {"Content-Type": "image/png"};
  }
  document.body.dataset.state = "reading";
  let response, answer;
  try {
    response = await fetch(`/api/read${gates ? "?gates=1&saliency=1" : ""}`, {method: "POST", body, headers, signal: controller.signal});
    answer = await response.json();
  } catch (error) {
    if (error.name !== "AbortError" && id > state.shown) showStatus(`The server did not answer (${error.message}).`, true);
    return;
  }
  if (id < state.shown) return;
  state.shown = id;
  if (!response.ok) {
    showStatus(answer.detail || `The server refused the picture (${response.status}).`, true);
    document.body.dataset.state = "refused";
    return;
  }
  // A reading without gates must not wipe the heatmaps of the same drawing's earlier one while it changes.
  showReading(answer, gates);
}

function showStatus(text, error = false) {
  const status = $("#status");
  status.textContent = text;
  status.classList.toggle("error", error);
}

function clearReading(text) {
  clearTimeout(state.readTimer);
  clearTimeout(state.settleTimer);
  if (state.controller) state.controller.abort();
  state.shown = ++state.sent;  // an answer still on its way is for a drawing that is gone
  state.reading = null;
  stopPlaying();
  for (const card of document.querySelectorAll(".model")) resetCard(card);
  seenContext.fillStyle = "#000";
  seenContext.fillRect(0, 0, seen.width, seen.height);
  $("#t").disabled = $("#play").disabled = true;
  showStatus(text);
  document.body.dataset.state = "idle";
}

// ---- showing a reading -----------------------------------------------------------------------------

function percent(p) {
  return `${(100 * p).toFixed(1)}%`;
}

function showReading(reading, withGates) {
  state.reading = reading;
  $("#t").disabled = $("#play").disabled = false;
  if (!state.playing) setT(ROWS, false);
  for (const result of reading.models) {
    const card = $(`.model[data-name="${CSS.escape(result.name)}"]`);
    if (!card) continue;
    $(".answer-digit", card).textContent = result.label;
    card.dataset.answer = String(result.answer);
    const top = $(".top3", card);
    top.replaceChildren(...result.top3.map((r) => {
      const li = document.createElement("li");
      li.textContent = `${r.label}: ${percent(r.probability)}`;
      return li;
    }));
    drawCurves(card, result);
    if (result.gates) drawGates(card, result);
    else if (!withGates) card.classList.add("gates-stale");
    if (result.saliency) drawSaliency(card, result);
  }
  const names = reading.models.map((r) => `${r.name} says ${r.label}`).join(", ");
  showStatus(`${names}.${withGates || !wantsGates() ? "" : " (gates and the rows that mattered follow when you stop drawing)"}`);
  document.body.dataset.state = withGates || !wantsGates() ? "ready" : "read";
  document.body.dataset.readings = String(Number(document.body.dataset.readings || 0) + 1);
  drawT();
  if (!state.firstAnswerAt) state.firstAnswerAt = performance.now();  // for benchmarks/page_in_browser.py
}

function setT(t, draw = true) {
  state.t = Math.max(1, Math.min(ROWS, t));
  $("#t").value = String(state.t);
  $("#t-label").value = `after row ${state.t} of ${ROWS}`;
  $("#t-label").textContent = `after row ${state.t} of ${ROWS}`;
  if (draw) drawT();
}

function drawT() {
  // Everything that depends on t: the image's row highlight, the bars, the markers.
  drawSeen();
  if (!state.reading) return;
  for (const result of state.reading.models) {
    const card = $(`.model[data-name="${CSS.escape(result.name)}"]`);
    if (!card) continue;
    drawBars(card, result.probabilities[state.t - 1]);
    $(".after", card).textContent = `after row ${state.t}`;
    const x = chartX(state.t - 1);
    const marker = $(".marker", card);
    if (marker) {
      marker.setAttribute("x1", x);
      marker.setAttribute("x2", x);
    }
    const rowMarker = $(".saliency-marker", card);
    if (rowMarker) rowMarker.setAttribute("x", String(saliencyX(state.t - 1) - 1));
    for (const heat of card.querySelectorAll(".heat-marker")) {
      const steps = Number(heat.dataset.steps);
      heat.style.left = `${(100 * (state.t * steps / ROWS - 0.5)) / steps}%`;
    }
  }
}

function drawSeen() {
  const cell = seen.width / ROWS;
  seenContext.fillStyle = "#000";
  seenContext.fillRect(0, 0, seen.width, seen.height);
  if (!state.reading) return;
  const image = state.reading.image;
  for (let r = 0; r < ROWS; r++) {
    for (let c = 0; c < ROWS; c++) {
      const v = image[r][c];
      if (v === 0) continue;
      seenContext.fillStyle = `rgb(${v},${v},${v})`;
      seenContext.fillRect(c * cell, r * cell, cell, cell);
    }
  }
  const row = state.t - 1;
  seenContext.fillStyle = "rgba(0, 0, 0, 0.62)";  // rows not read yet
  seenContext.fillRect(0, (row + 1) * cell, seen.width, seen.height - (row + 1) * cell);
  seenContext.fillStyle = "rgba(217, 72, 15, 0.35)";
  seenContext.fillRect(0, row * cell, seen.width, cell);
  seenContext.strokeStyle = "#ff7a3d";
  seenContext.lineWidth = 2;
  seenContext.strokeRect(1, row * cell, seen.width - 2, cell);
}

function drawBars(card, probabilities) {
  const bars = $(".bars", card);
  const best = probabilities.indexOf(Math.max(...probabilities));
  probabilities.forEach((p, k) => {
    const bar = bars.querySelector(`.bar[data-class="${k}"]`);
    bar.classList.toggle("best", k === best);
    bar.firstChild.style.width = `${(100 * p).toFixed(2)}%`;
    bars.querySelector(`.value[data-class="${k}"]`).textContent = percent(p);
  });
}

const CHART = {left: 14, right: 296, top: 6, bottom: 98};
function chartX(row) {
  return CHART.left + (CHART.right - CHART.left) * row / (ROWS - 1);
}
function chartY(p) {
  return CHART.bottom - (CHART.bottom - CHART.top) * p;
}

function drawCurves(card, result) {
  const svg = $(".curves", card);
  const ns = "http://www.w3.org/2000/svg";
  const parts = [];
  for (const [p, label] of [[0, "0"], [0.5, ".5"], [1, "1"]]) {
    const text = document.createElementNS(ns, "text");
    text.setAttribute("x", 0);
    text.setAttribute("y", chartY(p) + 3);
    text.textContent = label;
    parts.push(text);
  }
  const classes = result.probabilities[0].length;
  for (let k = 0; k < classes; k++) {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", result.probabilities.map((row, r) => `${chartX(r).toFixed(1)},${chartY(row[k]).toFixed(1)}`).join(" "));
    line.setAttribute("stroke", CLASS_COLOURS[k % CLASS_COLOURS.length]);
    if (k === result.answer) line.classList.add("best");
    const title = document.createElementNS(ns, "title");
    const model = state.models.find((m) => m.name === result.name);
    title.textContent = `class ${model ? model.classes[k] : k}`;
    line.append(title);
    parts.push(line);
  }
  const marker = document.createElementNS(ns, "line");
  marker.classList.add("marker");
  marker.setAttribute("y1", CHART.top - 4);
  marker.setAttribute("y2", CHART.bottom + 4);
  parts.push(marker);
  const end = document.createElementNS(ns, "text");
  end.setAttribute("x", CHART.right - 30);
  end.setAttribute("y", 108);
  end.textContent = "row 28";
  const start = document.createElementNS(ns, "text");
  start.setAttribute("x", CHART.left);
  start.setAttribute("y", 108);
  start.textContent = "row 1";
  parts.push(start, end);
  svg.replaceChildren(...parts);
}

// Colour maps: i, f, o are in [0, 1] (dark blue → yellow); g and c are signed (blue ← white → red).
const SEQUENTIAL = [[13, 8, 135], [126, 3, 168], [204, 71, 120], [248, 149, 64], [240, 249, 33]];
function sequential(v) {
  const x = Math.max(0, Math.min(1, v)) * (SEQUENTIAL.length - 1);
  const k = Math.min(SEQUENTIAL.length - 2, Math.floor(x));
  const a = SEQUENTIAL[k], b = SEQUENTIAL[k + 1], u = x - k;
  return [a[0] + (b[0] - a[0]) * u, a[1] + (b[1] - a[1]) * u, a[2] + (b[2] - a[2]) * u];
}
function diverging(v) {
  const x = Math.max(-1, Math.min(1, v));
  return x >= 0 ? [255, 255 * (1 - x) + 40 * x, 255 * (1 - x) + 40 * x]
                : [255 * (1 + x) + 33 * -x, 255 * (1 + x) + 102 * -x, 255 * (1 + x) + 172 * -x];
}

function drawGates(card, result) {
  const box = $(".gates", card);
  box.hidden = false;
  card.classList.remove("gates-stale");
  const layers = $(".layers", box);
  const parts = [];
  result.gates.forEach((layer, index) => {
    const title = document.createElement("div");
    title.className = "layer-title";
    title.textContent = `layer ${index + 1} (${layer.i[0].length} units)`;
    const row = document.createElement("div");
    row.className = "heatmaps";
    for (const name of ["i", "f", "o", "g", "c"]) {
      const values = layer[name];  // T × H
      const steps = values.length, units = values[0].length;
      let scale = 1;
      if (name === "c") scale = Math.max(1e-6, ...values.map((r) => Math.max(...r.map(Math.abs))));
      const canvas = document.createElement("canvas");
      canvas.className = "heatmap";
      canvas.width = steps;
      canvas.height = units;
      canvas.dataset.gate = name;
      canvas.dataset.layer = String(index + 1);
      const context = canvas.getContext("2d");
      const pixels = context.createImageData(steps, units);
      for (let t = 0; t < steps; t++) {
        for (let u = 0; u < units; u++) {
          const v = values[t][u];
          const rgb = name === "g" || name === "c" ? diverging(v / scale) : sequential(v);
          const at = 4 * (u * steps + t);
          pixels.data[at] = rgb[0];
          pixels.data[at + 1] = rgb[1];
          pixels.data[at + 2] = rgb[2];
          pixels.data[at + 3] = 255;
        }
      }
      context.putImageData(pixels, 0, 0);
      canvas.dataset.drawn = "1";
      const holder = document.createElement("div");
      holder.className = "heat";
      holder.style.position = "relative";
      const marker = document.createElement("div");
      marker.className = "heat-marker";
      marker.dataset.steps = String(steps);
      Object.assign(marker.style, {position: "absolute", top: "0", bottom: "0", width: "2px", background: "#ff7a3d",
                                   marginLeft: "-1px", pointerEvents: "none"});
      holder.append(canvas, marker);
      const figure = document.createElement("figure");
      const caption = document.createElement("figcaption");
      caption.textContent = name === "c" ? `c (±${scale.toFixed(1)})` : name;
      caption.title = GATE_NAMES[name];
      figure.append(holder, caption);
      row.append(figure);
    }
    parts.push(title, row);
  });
  layers.replaceChildren(...parts);
  $(".gates-note", card).textContent = "· time across, units down";
}

// ---- the reading over time: slider and Play --------------------------------------------------------

$("#t").addEventListener("input", (event) => {
  stopPlaying();
  setT(Number(event.target.value));
});

function stopPlaying() {
  if (state.playing) clearInterval(state.playing);
  state.playing = null;
  $("#play").textContent = "Play";
  delete document.body.dataset.playing;
}

$("#play").addEventListener("click", () => {
  if (state.playing) {
    stopPlaying();
    return;
  }
  $("#play").textContent = "Pause";
  document.body.dataset.playing = "1";
  setT(1);
  state.playing = setInterval(() => {
    if (state.t >= ROWS) {
      stopPlaying();
      return;
    }
    setT(state.t + 1);
  }, PLAY_STEP_MS);
});

// ---- the cards -------------------------------------------------------------------------------------

function makeCard(model) {
  const card = $("#model-card").content.firstElementChild.cloneNode(true);
  card.dataset.name = model.name;
  card.dataset.kind = model.model;
  card.dataset.lstm = model.lstm ? "1" : "0";
  $(".model-name", card).textContent = model.name;
  const accuracy = model.test_accuracy == null ? "" : ` · test ${(100 * model.test_accuracy).toFixed(2)}%`;
  const layers = model.num_layers > 1 ? `${model.num_layers}×${model.hidden_size}` : `${model.hidden_size}`;
  $(".model-info", card).textContent = `${model.model} ${layers} · ${model.parameters.toLocaleString("en")} parameters${accuracy}`;
  $(".model-info", card).title = model.run_dir;
  const bars = $(".bars", card);
  model.classes.forEach((name, k) => {
    const label = document.createElement("span");
    label.textContent = name.length > 3 ? name.slice(0, 3) : name;
    label.title = name;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.dataset.class = String(k);
    bar.append(document.createElement("span"));
    const value = document.createElement("span");
    value.className = "value";
    value.dataset.class = String(k);
    value.textContent = "–";
    bars.append(label, bar, value);
  });
  $(".legend", card).replaceChildren(...model.classes.map((name, k) => {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = CLASS_COLOURS[k % CLASS_COLOURS.length];
    item.append(swatch, name);
    return item;
  }));
  if (model.lstm) {
    $(".gates", card).hidden = false;
    $(".layers", card).textContent = gatesHint();
  }
  return card;
}

function gatesHint() {
  return state.local ? "Draw a digit: its gates appear here." : "Draw a digit: its gates appear when you stop drawing.";
}

function resetCard(card) {
  $(".saliency", card).hidden = true;
  $(".saliency-bars", card).replaceChildren();
  $(".answer-digit", card).textContent = "–";
  delete card.dataset.answer;
  $(".top3", card).replaceChildren();
  for (const bar of card.querySelectorAll(".bar span")) bar.style.width = "0";
  for (const value of card.querySelectorAll(".value")) value.textContent = "–";
  $(".curves", card).replaceChildren();
  if (card.dataset.lstm === "1") $(".layers", card).textContent = gatesHint();
}

// ---- the explanation -------------------------------------------------------------------------------

// Open beside the pad where the grid has room for it (style.css: wider than 900 px); folded under the cards
// on narrower screens, where it would otherwise push the cards a screen away from the pad and Play.
if (matchMedia("(min-width: 901px)").matches) $("#about").open = true;
$("#about-link").addEventListener("click", () => { $("#about").open = true; });

// ---- reading in the browser (an export: the weights are in the page) ----------------------------------

const weightTexts = {};
window.rnnlabWeights = (name, text) => { weightTexts[name] = text; };  // what each models/<name>.js calls

function loadScript(src) {  // a page opened from disk may load scripts, not fetch files
  return new Promise((resolve) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = () => resolve(true);
    script.onerror = () => resolve(false);
    document.head.append(script);
  });
}

// The browser's own SHA-256 where it offers one (file://, https and loopback are secure contexts), else reader.js's.
async function sha256(bytes) {
  if (window.isSecureContext && window.crypto && crypto.subtle) {
    try {
      const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
    } catch (error) {
      // fall through to the script's own
    }
  }
  return RnnlabReader.sha256(bytes);
}

// One model's weights, checked against the manifest's SHA-256: the model, or the line saying what is wrong.
async function loadLocalModel(entry) {
  const file = `models/${entry.weights.file}`;
  const again = "export the folder again (rnnlab serve RUN... --export DIR) or download it again";
  if (!(await loadScript(file)) || typeof weightTexts[entry.name] !== "string") {
    return {problem: `${file} is missing or damaged (it does not load as a weight file): ${again}.`};
  }
  let decoded;
  try {
    decoded = RnnlabReader.decodeWeights(weightTexts[entry.name]);
  } catch (error) {
    return {problem: `${file} is damaged (its weights are not valid base64): ${again}.`};
  }
  delete weightTexts[entry.name];
  if (decoded.bytes.length !== entry.weights.bytes || (await sha256(decoded.bytes)) !== entry.weights.sha256) {
    return {problem: `${file} is damaged: its checksum does not match models/manifest.js; ${again}.`};
  }
  return {model: RnnlabReader.makeModel(entry, decoded.floats)};
}

async function startLocal(manifest) {
  $("#api-note").hidden = true;
  $("#local-note").hidden = false;
  if (manifest.format !== 1 || !Array.isArray(manifest.models)) {
    showStatus("models/manifest.js was written by another rnnlab version: export the folder again.", true);
    document.body.dataset.state = "damaged";
    return false;
  }
  const loaded = await Promise.all(manifest.models.map(loadLocalModel));
  state.local = loaded.filter((l) => l.model).map((l) => l.model);
  state.models = state.local.map((m) => m.entry);
  state.problems = loaded.filter((l) => l.problem).map((l) => l.problem);
  state.modelsReadyAt = performance.now();  // for benchmarks/page_in_browser.py
  return true;
}

function padImage() {  // the pad as the models read it (28×28), or null when no digit is found
  if (state.upload && state.uploadGray && state.strokes.length + (state.drawing ? 1 : 0) === 0) {
    const {gray, width, height} = state.uploadGray;
    return RnnlabReader.toMnist(gray, width, height);
  }
  const {data, width, height} = padContext.getImageData(0, 0, pad.width, pad.height);
  const gray = new Float64Array(width * height);
  for (let k = 0; k < gray.length; k++) gray[k] = data[4 * k] / 255;  // white ink on black: R = G = B = gray
  return RnnlabReader.toMnist(gray, width, height);
}

async function pictureLuminance(file) {  // luminance in [0, 1] as rnnlab.report.images reads a picture
  try {
    const bitmap = await createImageBitmap(file, {imageOrientation: "from-image"});
    const canvas = document.createElement("canvas");
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const context = canvas.getContext("2d");
    context.drawImage(bitmap, 0, 0);
    const {data, width, height} = context.getImageData(0, 0, canvas.width, canvas.height);
    const gray = new Float64Array(width * height), alpha = new Float64Array(width * height);
    let opaque = true, drawn = 0, weight = 0;
    for (let k = 0; k < gray.length; k++) {
      const [r, g, b, a] = [data[4 * k], data[4 * k + 1], data[4 * k + 2], data[4 * k + 3]];
      gray[k] = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) / 255;  // PIL's L
      alpha[k] = a / 255;
      if (a < 255) opaque = false;
      drawn += gray[k] * alpha[k];
      weight += alpha[k];
    }
    if (!opaque) {  // transparent: over a background opposite to the drawn pixels (images._composite)
      const background = weight > 0 && drawn / weight < 0.5 ? 1 : 0;
      for (let k = 0; k < gray.length; k++) gray[k] = gray[k] * alpha[k] + background * (1 - alpha[k]);
    }
    return {gray, width, height};
  } catch (error) {
    return null;
  }
}

function readLocally(strokes) {
  const id = ++state.sent;
  state.shown = id;
  state.lastReadAt = performance.now();
  if (state.upload && strokes === 0 && !state.uploadGray) {
    showStatus("This browser cannot read that picture: save it as PNG and try again.", true);
    document.body.dataset.state = "refused";
    return;
  }
  const image = padImage();
  if (!image) {
    showStatus("No digit found (the picture is blank or has no contrast): draw one digit.", true);
    document.body.dataset.state = "refused";
    return;
  }
  const started = performance.now();
  const models = state.local.map((model) => RnnlabReader.read(model, image, {gates: true, saliency: true}));
  const rows = Array.from({length: ROWS}, (_, r) => Array.from(image.subarray(r * ROWS, (r + 1) * ROWS)));
  state.lastReadMs = performance.now() - started;
  showReading({image: rows, models}, true);
}

// ---- which rows mattered ---------------------------------------------------------------------------

const SALIENCY = {left: 2, right: 298, top: 4, bottom: 66};
function saliencyX(row) {
  return SALIENCY.left + (SALIENCY.right - SALIENCY.left) * (row + 0.5) / ROWS;
}

function drawSaliency(card, result) {
  const box = $(".saliency", card);
  box.hidden = false;
  const values = result.saliency, top = Math.max(1e-12, ...values);
  const ns = "http://www.w3.org/2000/svg", width = (SALIENCY.right - SALIENCY.left) / ROWS, parts = [];
  values.forEach((v, row) => {
    const bar = document.createElementNS(ns, "rect");
    const height = (SALIENCY.bottom - SALIENCY.top) * v / top;
    bar.setAttribute("x", (saliencyX(row) - width * 0.4).toFixed(2));
    bar.setAttribute("width", (width * 0.8).toFixed(2));
    bar.setAttribute("y", (SALIENCY.bottom - height).toFixed(2));
    bar.setAttribute("height", Math.max(0.5, height).toFixed(2));
    bar.dataset.row = String(row + 1);
    const title = document.createElementNS(ns, "title");
    title.textContent = `row ${row + 1}: ${v.toPrecision(3)}`;
    bar.append(title);
    parts.push(bar);
  });
  const marker = document.createElementNS(ns, "rect");
  marker.classList.add("saliency-marker");
  marker.setAttribute("y", "0");
  marker.setAttribute("width", "2");
  marker.setAttribute("height", "70");
  marker.setAttribute("x", String(saliencyX(state.t - 1) - 1));
  parts.push(marker);
  $(".saliency-bars", box).replaceChildren(...parts);
  $(".saliency-note", box).textContent = saliencySentence(result, card.dataset.kind);
}

function saliencySentence(result, kind) {
  const values = result.saliency, total = values.reduce((a, b) => a + b, 0) || 1;
  const topHalf = values.slice(0, ROWS / 2).reduce((a, b) => a + b, 0) / total;
  const most = values.map((v, r) => r).sort((a, b) => values[b] - values[a]).slice(0, 3).map((r) => r + 1);
  const here = `Here rows 1–14 carry ${Math.round(100 * topHalf)}% of it; the rows that mattered most for ` +
               `“${result.label}” are ${most.join(", ")}.`;
  if (kind === "lstm" || kind === "scratch-lstm") {
    return `An LSTM can carry early rows to its answer in its cell state (a forget gate f near 1 keeps them), ` +
           `so rows far above the last can still matter. ${here}`;
  }
  if (kind === "gru") {
    return `A GRU keeps what it read through its update gate z, much as an LSTM's forget gate does. ${here}`;
  }
  return `A plain RNN multiplies the gradient by its recurrent weights at every row, so it fades as it goes ` +
         `back: early rows usually matter less. ${here}`;
}

async function start() {
  redrawPad();
  drawSeen();
  if (window.RNNLAB_EXPORT) {
    if (!(await startLocal(window.RNNLAB_EXPORT))) return;
  } else {
    try {
      const response = await fetch("/api/models");
      state.models = (await response.json()).models;
    } catch (error) {
      showStatus(`Cannot reach the server (${error.message}).`, true);
      return;
    }
  }
  $("#models").replaceChildren(...state.models.map(makeCard));
  document.body.dataset.state = "idle";
  if (state.problems && state.problems.length) {
    showStatus(state.problems.join(" "), true);
    document.body.dataset.state = state.models.length ? "idle" : "damaged";
    document.body.dataset.damaged = "1";
  }
}

start();
