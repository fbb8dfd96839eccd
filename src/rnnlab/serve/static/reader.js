// rnnlab's in-browser reader: what POST /api/read computes, from the trained weights, in plain JavaScript.
//
//   RnnlabReader.toMnist(gray, width, height)  luminance in [0, 1] → the 28×28 image MNIST's way (a port of
//                                              rnnlab.report.images.to_mnist and Pillow's Lanczos resampling)
//   RnnlabReader.makeModel(entry, floats)      a manifest entry (rnnlab serve --export) and its float32 weights
//   RnnlabReader.read(model, image, options)   probabilities after every row, the LSTMs' gates i, f, o, g and
//                                              cell c, and (options.saliency) ‖∂ log p(answer) / ∂ row t‖
//   RnnlabReader.sha256(bytes)                 the weight files' checksum (crypto.subtle is missing on plain http)
//
// Numbers are doubles (JavaScript's); the weights are the model's float32 values. No library, no network.
"use strict";

(function () {
  const FIELD = 28, BOX = 20, PIXELS = 784, MIN_CONTRAST = 0.1;

  // ---- preprocessing: rnnlab.report.images.to_mnist -------------------------------------------------

  function roundHalfEven(x) {  // Python's round() and NumPy's np.round
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  function median(values) {
    const sorted = Float64Array.from(values).sort();
    const n = sorted.length, m = n >> 1;
    return n % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
  }

  function lanczos(x) {
    const sinc = (v) => (v === 0 ? 1 : Math.sin(v * Math.PI) / (v * Math.PI));
    return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0;
  }

  function coefficients(inSize, outSize) {  // Pillow's precompute_coeffs (Resample.c), for the whole box
    const scale = inSize / outSize, filterscale = Math.max(1, scale), support = 3 * filterscale;
    const result = [];
    for (let xx = 0; xx < outSize; xx++) {
      const center = (xx + 0.5) * scale, ss = 1 / filterscale;
      const xmin = Math.max(0, Math.trunc(center - support + 0.5));
      const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
      const k = new Float64Array(Math.max(0, xmax));
      let ww = 0;
      for (let x = 0; x < xmax; x++) {
        k[x] = lanczos((x + xmin - center + 0.5) * ss);
        ww += k[x];
      }
      if (ww !== 0) for (let x = 0; x < xmax; x++) k[x] /= ww;
      result.push({xmin, k});
    }
    return result;
  }

  // Pillow's Image.resize(LANCZOS) of a mode "F" (float32) image: a horizontal pass over the rows the
  // vertical pass needs, then the vertical pass; each pass sums in double and stores float32.
  function resizeLanczos(src, width, height, outW, outH) {
    const needH = outW !== width, needV = outH !== height;
    let image = src, w = width, h = height;
    const vertical = coefficients(height, outH);
    if (needH) {
      const first = vertical[0].xmin, last = vertical[outH - 1].xmin + vertical[outH - 1].k.length;
      const horizontal = coefficients(width, outW), rows = last - first;
      const temp = new Float32Array(outW * rows);
      for (let y = 0; y < rows; y++) {
        for (let xx = 0; xx < outW; xx++) {
          const {xmin, k} = horizontal[xx];
          let ss = 0;
          for (let x = 0; x < k.length; x++) ss += src[(y + first) * width + x + xmin] * k[x];
          temp[y * outW + xx] = ss;
        }
      }
      for (const c of vertical) c.xmin -= first;
      image = temp; w = outW; h = rows;
    }
    if (!needV) return image;
    const out = new Float32Array(w * outH);
    for (let yy = 0; yy < outH; yy++) {
      const {xmin, k} = vertical[yy];
      for (let xx = 0; xx < w; xx++) {
        let ss = 0;
        for (let y = 0; y < k.length; y++) ss += image[(y + xmin) * w + xx] * k[y];
        out[yy * w + xx] = ss;
      }
    }
    return out;
  }

  // The digit's box and contrast: null when the picture is blank (to_mnist's first half).
  function findDigit(gray, width, height) {
    const border = [];
    for (let x = 0; x < width; x++) border.push(gray[x], gray[(height - 1) * width + x]);
    for (let y = 0; y < height; y++) border.push(gray[y * width], gray[y * width + width - 1]);
    const light = median(border) > 0.5;
    const background = median(light ? border.map((v) => 1 - v) : border);
    const rowTop = new Float64Array(height).fill(-Infinity), columnTop = new Float64Array(width).fill(-Infinity);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const v = light ? 1 - gray[y * width + x] : gray[y * width + x];
        if (v > rowTop[y]) rowTop[y] = v;
        if (v > columnTop[x]) columnTop[x] = v;
      }
    }
    const top = Math.max(...rowTop);
    if (top - background < MIN_CONTRAST) return null;
    const inside = (v) => (v - background) / (top - background) > 0.2;
    const rows = [...rowTop.keys()].filter((y) => inside(rowTop[y]));
    const cols = [...columnTop.keys()].filter((x) => inside(columnTop[x]));
    return {light, background, top, y0: rows[0], y1: rows[rows.length - 1], x0: cols[0], x1: cols[cols.length - 1]};
  }

  // Luminance in [0, 1] (width × height, row-major) → Uint8Array(784), as rnnlab's to_mnist; null if blank.
  function toMnist(gray, width, height) {
    const found = findDigit(gray, width, height);
    if (!found) return null;
    const {light, background, top, y0, y1, x0, x1} = found;
    const h = y1 - y0 + 1, w = x1 - x0 + 1;
    const digit = new Float32Array(w * h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = light ? 1 - gray[(y + y0) * width + x + x0] : gray[(y + y0) * width + x + x0];
        const d = Math.min(1, Math.max(0, (v - background) / (top - background)));
        digit[y * w + x] = d > 0.05 ? d : 0;
      }
    }
    const scale = BOX / Math.max(h, w);
    const sw = Math.max(1, roundHalfEven(w * scale)), sh = Math.max(1, roundHalfEven(h * scale));
    const small = resizeLanczos(digit, w, h, sw, sh).map((v) => Math.min(1, Math.max(0, v)));
    let total = 0, sy = 0, sx = 0;
    for (let y = 0; y < sh; y++) {
      for (let x = 0; x < sw; x++) {
        const v = small[y * sw + x];
        total += v; sy += y * v; sx += x * v;
      }
    }
    if (total <= 0) return null;
    const clip = (v, hi) => Math.min(hi, Math.max(0, v));
    const ty = clip(roundHalfEven(FIELD / 2 - sy / total), FIELD - sh), tx = clip(roundHalfEven(FIELD / 2 - sx / total), FIELD - sw);
    const field = new Uint8Array(PIXELS);
    for (let y = 0; y < sh; y++) {
      for (let x = 0; x < sw; x++) field[(y + ty) * FIELD + x + tx] = roundHalfEven(small[y * sw + x] * 255);
    }
    return field;
  }

  // ---- the models ------------------------------------------------------------------------------------

  const GATE_BLOCKS = {rnn: 1, gru: 3, lstm: 4, "scratch-lstm": 4};

  function makeModel(entry, floats) {
    const tensor = {};
    for (const t of entry.weights.tensors) {  // as doubles once: every product then reads one kind of array
      const size = t.shape.reduce((a, b) => a * b, 1);
      tensor[t.name] = Float64Array.from(floats.subarray(t.offset, t.offset + size));
    }
    const G = GATE_BLOCKS[entry.model];
    if (!G) throw new Error(`the page cannot compute a ${entry.model} model`);
    const H = entry.hidden_size, layers = [];
    for (let k = 0; k < entry.num_layers; k++) {
      layers.push({D: k === 0 ? entry.input_size : H, H, G, Wx: tensor[`Wx${k}`], Wh: tensor[`Wh${k}`],
                   bx: tensor[`bx${k}`], bh: tensor[`bh${k}`]});
    }
    return {entry, kind: entry.model, lstm: G === 4, layers, W: tensor.W, b: tensor.b, C: entry.classes.length,
            T: entry.steps, perm: entry.permutation};
  }

  // The image (784 values 0-255, row-major) as the model's inputs x (T × D): rnnlab.data.to_sequences.
  function inputs(model, image) {
    const x = new Float64Array(PIXELS);
    for (let k = 0; k < PIXELS; k++) {
      const p = model.perm ? image[model.perm[k]] : image[k];
      x[k] = (Math.fround(Math.fround(p / 255) - 0.5)) / 0.5;
    }
    return x;
  }

  // a += v·W for W (K × N) row-major: the products of every step. Four rows at a time, so that a[j] is read
  // and written once per four rows (JavaScript does not vectorise; this halves the time of a reading).
  function addProduct(a, v, W, K, N) {
    let r = 0;
    for (; r + 4 <= K; r += 4) {
      const s0 = v[r], s1 = v[r + 1], s2 = v[r + 2], s3 = v[r + 3];
      const o0 = r * N, o1 = o0 + N, o2 = o1 + N, o3 = o2 + N;
      for (let j = 0; j < N; j++) a[j] += s0 * W[o0 + j] + s1 * W[o1 + j] + s2 * W[o2 + j] + s3 * W[o3 + j];
    }
    for (; r < K; r++) {
      const s = v[r], o = r * N;
      for (let j = 0; j < N; j++) a[j] += s * W[o + j];
    }
  }

  // d = W·g for W (K × N): the transposed product of the backward pass (d has K entries), four rows at a time.
  function productT(g, W, K, N) {
    const d = new Float64Array(K);
    let r = 0;
    for (; r + 4 <= K; r += 4) {
      const o0 = r * N, o1 = o0 + N, o2 = o1 + N, o3 = o2 + N;
      let t0 = 0, t1 = 0, t2 = 0, t3 = 0;
      for (let j = 0; j < N; j++) {
        const gj = g[j];
        t0 += W[o0 + j] * gj; t1 += W[o1 + j] * gj; t2 += W[o2 + j] * gj; t3 += W[o3 + j] * gj;
      }
      d[r] = t0; d[r + 1] = t1; d[r + 2] = t2; d[r + 3] = t3;
    }
    for (; r < K; r++) {
      const o = r * N;
      let t = 0;
      for (let j = 0; j < N; j++) t += W[o + j] * g[j];
      d[r] = t;
    }
    return d;
  }

  // Every step's v_t·W at once, for the products outside the recurrence (the input projection, and dx in the
  // backward pass), as numpy_lstm does: four rows of W are read once for all T steps instead of once a step.
  function addProductAll(outs, vs, W, K, N) {
    let r = 0;
    for (; r + 4 <= K; r += 4) {
      const o0 = r * N, o1 = o0 + N, o2 = o1 + N, o3 = o2 + N;
      for (let t = 0; t < vs.length; t++) {
        const v = vs[t], a = outs[t], s0 = v[r], s1 = v[r + 1], s2 = v[r + 2], s3 = v[r + 3];
        for (let j = 0; j < N; j++) a[j] += s0 * W[o0 + j] + s1 * W[o1 + j] + s2 * W[o2 + j] + s3 * W[o3 + j];
      }
    }
    for (; r < K; r++) {
      for (let t = 0; t < vs.length; t++) {
        const s = vs[t][r], a = outs[t], o = r * N;
        for (let j = 0; j < N; j++) a[j] += s * W[o + j];
      }
    }
  }

  function productTAll(gs, W, K, N) {  // productT of every step's g, four rows of W at a time for all steps
    const ds = gs.map(() => new Float64Array(K));
    let r = 0;
    for (; r + 4 <= K; r += 4) {
      const o0 = r * N, o1 = o0 + N, o2 = o1 + N, o3 = o2 + N;
      for (let t = 0; t < gs.length; t++) {
        const g = gs[t], d = ds[t];
        let t0 = 0, t1 = 0, t2 = 0, t3 = 0;
        for (let j = 0; j < N; j++) {
          const gj = g[j];
          t0 += W[o0 + j] * gj; t1 += W[o1 + j] * gj; t2 += W[o2 + j] * gj; t3 += W[o3 + j] * gj;
        }
        d[r] = t0; d[r + 1] = t1; d[r + 2] = t2; d[r + 3] = t3;
      }
    }
    for (; r < K; r++) {
      for (let t = 0; t < gs.length; t++) {
        let sum = 0;
        for (let j = 0; j < N; j++) sum += W[r * N + j] * gs[t][j];
        ds[t][r] = sum;
      }
    }
    return ds;
  }

  const sigmoid = (v) => 1 / (1 + Math.exp(-v));

  // One layer over the sequence xs (T arrays of D): every step's h, and what the backward pass needs.
  function layerForward(layer, kind, xs) {
    const {H, G, D} = layer, GH = G * H;
    let h = new Float64Array(H), c = new Float64Array(H);
    const steps = [], axs = xs.map(() => Float64Array.from(layer.bx));
    addProductAll(axs, xs, layer.Wx, D, GH);  // x_t Wx + bx for every step, before the loop
    for (let t = 0; t < xs.length; t++) {
      const x = xs[t], ax = axs[t], ah = Float64Array.from(layer.bh);
      addProduct(ah, h, layer.Wh, H, GH);
      const prev = h, next = new Float64Array(H), step = {x, prev};
      if (kind === "rnn") {
        for (let j = 0; j < H; j++) next[j] = Math.tanh(ax[j] + ah[j]);
      } else if (kind === "gru") {
        const r = new Float64Array(H), z = new Float64Array(H), n = new Float64Array(H);
        for (let j = 0; j < H; j++) {
          r[j] = sigmoid(ax[j] + ah[j]);
          z[j] = sigmoid(ax[H + j] + ah[H + j]);
          n[j] = Math.tanh(ax[2 * H + j] + r[j] * ah[2 * H + j]);
          next[j] = (1 - z[j]) * n[j] + z[j] * prev[j];
        }
        Object.assign(step, {r, z, n, ahn: ah.subarray(2 * H)});
      } else {
        const gates = lstmCell(ax, ah, c, next, H);
        Object.assign(step, gates);
        c = gates.c;
      }
      step.h = next;
      steps.push(step);
      h = next;
    }
    return steps;
  }

  function lstmCell(ax, ah, prevC, next, H) {
    const i = new Float64Array(H), f = new Float64Array(H), o = new Float64Array(H), g = new Float64Array(H);
    const c = new Float64Array(H), tc = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      i[j] = sigmoid(ax[j] + ah[j]);
      f[j] = sigmoid(ax[H + j] + ah[H + j]);
      o[j] = sigmoid(ax[2 * H + j] + ah[2 * H + j]);
      g[j] = Math.tanh(ax[3 * H + j] + ah[3 * H + j]);
      c[j] = f[j] * prevC[j] + i[j] * g[j];
      tc[j] = Math.tanh(c[j]);
      next[j] = o[j] * tc[j];
    }
    return {i, f, o, g, c, tc, prevC};
  }

  function softmax(logits) {
    const top = Math.max(...logits);
    const e = logits.map((v) => Math.exp(v - top));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  }

  function logitsOf(model, h) {
    const logits = Float64Array.from(model.b);
    addProduct(logits, h, model.W, model.layers[model.layers.length - 1].H, model.C);
    return logits;
  }

  // ---- the backward pass: ∂ log p(answer) / ∂ x (numpy_lstm.lstm_backward, and its rnn and gru cousins) --

  // dh: per step the gradient arriving at h_t from above (null: none); returns per step dL/dx_t.
  function layerBackward(layer, kind, steps, dh) {
    const {H, G, D} = layer, GH = G * H;
    let dnextH = new Float64Array(H), dnextC = new Float64Array(H);
    const daxs = new Array(steps.length);
    for (let t = steps.length - 1; t >= 0; t--) {
      const s = steps[t], d = Float64Array.from(dnextH);
      if (dh[t]) for (let j = 0; j < H; j++) d[j] += dh[t][j];
      const dax = new Float64Array(GH), dah = new Float64Array(GH), direct = new Float64Array(H);
      if (kind === "rnn") {
        for (let j = 0; j < H; j++) dax[j] = dah[j] = d[j] * (1 - s.h[j] * s.h[j]);
      } else if (kind === "gru") {
        for (let j = 0; j < H; j++) {
          const dn = d[j] * (1 - s.z[j]) * (1 - s.n[j] * s.n[j]);
          const dr = dn * s.ahn[j] * s.r[j] * (1 - s.r[j]), dz = d[j] * (s.prev[j] - s.n[j]) * s.z[j] * (1 - s.z[j]);
          dax[j] = dah[j] = dr;
          dax[H + j] = dah[H + j] = dz;
          dax[2 * H + j] = dn;
          dah[2 * H + j] = dn * s.r[j];
          direct[j] = d[j] * s.z[j];
        }
      } else {
        dnextC = lstmCellBackward(s, d, dnextC, dax, H);
        dah.set(dax);
      }
      dnextH = productT(dah, layer.Wh, H, GH);
      for (let j = 0; j < H; j++) dnextH[j] += direct[j];
      daxs[t] = dax;
    }
    return productTAll(daxs, layer.Wx, D, GH);  // dx_t = da_t Wxᵀ for every step, after the loop
  }

  function lstmCellBackward(s, dh, dnextC, da, H) {  // numpy_lstm.lstm_cell_backward
    const dprevC = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      const i = s.i[j], f = s.f[j], o = s.o[j], g = s.g[j], tc = s.tc[j];
      const dc = dnextC[j] + dh[j] * o * (1 - tc * tc);
      da[j] = dc * g * i * (1 - i);
      da[H + j] = dc * s.prevC[j] * f * (1 - f);
      da[2 * H + j] = dh[j] * tc * o * (1 - o);
      da[3 * H + j] = dc * i * (1 - g * g);
      dprevC[j] = dc * f;
    }
    return dprevC;
  }

  // ‖∂ log p(answer) / ∂ row‖ for each of the picture's 28 rows (inputs as the model reads them).
  function saliency(model, traces, probabilities, answer) {
    const top = model.layers.length - 1, T = model.T;
    const dlogits = Float64Array.from(probabilities, (p, c) => (c === answer ? 1 : 0) - p);  // one array kind
    let dh = new Array(T).fill(null);
    dh[T - 1] = productT(dlogits, model.W, model.layers[top].H, model.C);
    for (let k = top; k >= 0; k--) dh = layerBackward(model.layers[k], model.kind, traces[k], dh);
    const perPixel = new Float64Array(PIXELS), D = model.layers[0].D;
    dh.forEach((dx, t) => dx.forEach((v, d) => { perPixel[model.perm ? model.perm[t * D + d] : t * D + d] = v; }));
    const rows = [];
    for (let r = 0; r < FIELD; r++) {
      let s = 0;
      for (let c = 0; c < FIELD; c++) s += perPixel[r * FIELD + c] ** 2;
      rows.push(Math.sqrt(s));
    }
    return rows;
  }

  // What /api/read answers for one model: probabilities after each row (28 × C), the answer, the top 3, the
  // LSTMs' gates per layer (i, f, o, g, c: T × H) when options.gates, the saliency per row when options.saliency.
  function read(model, image, options = {}) {
    const x = inputs(model, image), D = model.layers[0].D;
    let xs = Array.from({length: model.T}, (_, t) => x.subarray(t * D, (t + 1) * D));
    const traces = [];
    for (const layer of model.layers) {
      const steps = layerForward(layer, model.kind, xs);
      traces.push(steps);
      xs = steps.map((s) => s.h);
    }
    const per = model.T / FIELD, probabilities = [];
    for (let row = 0; row < FIELD; row++) probabilities.push(softmax(Array.from(logitsOf(model, xs[(row + 1) * per - 1]))));
    const last = probabilities[FIELD - 1], names = model.entry.classes;
    const order = last.map((p, c) => c).sort((a, b) => last[b] - last[a] || a - b);
    const answer = order[0];
    const result = {name: model.entry.name, model: model.kind, answer, label: names[answer], steps: model.T,
                    top3: order.slice(0, 3).map((c) => ({class: c, label: names[c], probability: last[c]})),
                    probabilities, gates: null, saliency: null};
    if (options.gates && model.lstm) {
      result.gates = traces.map((steps) => Object.fromEntries(["i", "f", "o", "g", "c"].map(
        (name) => [name, steps.map((s) => Array.from(s[name]))])));
    }
    if (options.saliency) result.saliency = saliency(model, traces, last, answer);
    return result;
  }

  // ---- SHA-256 (FIPS 180-4) ----------------------------------------------------------------------------

  const K256 = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2]);

  function sha256(bytes) {
    const n = bytes.length, padded = new Uint8Array(((n + 9 + 63) >> 6) << 6);
    padded.set(bytes);
    padded[n] = 0x80;
    const view = new DataView(padded.buffer);
    view.setUint32(padded.length - 8, Math.floor(n / 0x20000000));
    view.setUint32(padded.length - 4, (n << 3) >>> 0);
    const hash = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c,
                                  0x1f83d9ab, 0x5be0cd19]);
    const w = new Uint32Array(64), rot = (x, k) => (x >>> k) | (x << (32 - k));
    for (let block = 0; block < padded.length; block += 64) {
      for (let t = 0; t < 16; t++) w[t] = view.getUint32(block + 4 * t);
      for (let t = 16; t < 64; t++) {
        const s0 = rot(w[t - 15], 7) ^ rot(w[t - 15], 18) ^ (w[t - 15] >>> 3);
        const s1 = rot(w[t - 2], 17) ^ rot(w[t - 2], 19) ^ (w[t - 2] >>> 10);
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) >>> 0;
      }
      let [a, b, c, d, e, f, g, h] = hash;
      for (let t = 0; t < 64; t++) {
        const t1 = (h + (rot(e, 6) ^ rot(e, 11) ^ rot(e, 25)) + ((e & f) ^ (~e & g)) + K256[t] + w[t]) >>> 0;
        const t2 = ((rot(a, 2) ^ rot(a, 13) ^ rot(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
        h = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      [a, b, c, d, e, f, g, h].forEach((v, k) => { hash[k] = (hash[k] + v) >>> 0; });
    }
    return Array.from(hash, (v) => v.toString(16).padStart(8, "0")).join("");
  }

  // base64 text → the float32 values (little-endian) and the raw bytes, for the checksum.
  function decodeWeights(text) {
    const binary = atob(text), bytes = new Uint8Array(binary.length);
    for (let k = 0; k < binary.length; k++) bytes[k] = binary.charCodeAt(k);
    const floats = new Float32Array(bytes.length >> 2), view = new DataView(bytes.buffer);
    for (let k = 0; k < floats.length; k++) floats[k] = view.getFloat32(4 * k, true);
    return {bytes, floats};
  }

  window.RnnlabReader = {toMnist, makeModel, read, sha256, decodeWeights, resizeLanczos};
})();
