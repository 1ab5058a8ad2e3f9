/*
 * vaehub.js: the vae-hub decoder in the browser, and the live latent map and grid built on it.
 *
 * A plain script (no build step, no dependency) that defines `window.vaeHub`. The decoder is rebuilt from a
 * model's own files (config.json and model.safetensors), so the page decodes latent points without asking the
 * server: after loading, nothing more is fetched. See docs/live.md for the API and the numbers.
 *
 *   vaeHub.register("sgvb", {config: URL, weights: URL, map: URL});
 *   const probs = await vaeHub.decode("sgvb", [0.5, -1.0]);        // 784 pixel probabilities, row-major 28×28
 *   const map = vaeHub.mountLatentMap(element, {model: "sgvb"});   // #latent-map and #latent-decode
 *   const grid = vaeHub.mountLatentGrid(element, {model: "sgvb"}); // #latent-grid
 */
(function (global) {
  "use strict";

  // ---------------------------------------------------------------------------------------------------------
  // safetensors: 8-byte little-endian header length, a JSON header, then the raw little-endian tensors.

  const DTYPES = { F64: 8, F32: 4, F16: 2, BF16: 2, U8: 1, I8: 1, U16: 2, I16: 2, U32: 4, I32: 4 };
  const MAX_HEADER = 100 << 20; // the Rust reference's own cap: a larger header is a hostile or broken file
  const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

  function halfToFloat(h) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) return sign * frac * 2 ** -24; // subnormal (and ±0)
    if (exp === 31) return frac ? NaN : sign * Infinity;
    return sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }

  const bf16View = new DataView(new ArrayBuffer(4));
  function bf16ToFloat(h) {
    bf16View.setUint32(0, h << 16);
    return bf16View.getFloat32(0);
  }

  class SafeTensors {
    constructor(buffer, dataStart, entries, metadata, available) {
      this.buffer = buffer;
      this.dataStart = dataStart;
      this.entries = entries; // name → {dtype, shape, begin, end}
      this.metadata = metadata;
      this.available = available; // bytes of the file held (less than all when only a prefix was fetched)
    }

    names() {
      return Object.keys(this.entries);
    }

    has(name) {
      return Object.hasOwn(this.entries, name);
    }

    /** A tensor as {dtype, shape, data}: floats as Float32Array (Float64Array for F64), integers as their array. */
    get(name) {
      const e = this.entries[name];
      if (!e || !this.has(name)) throw new Error(`safetensors: no tensor named ${JSON.stringify(name)}`);
      const start = this.dataStart + e.begin;
      const end = this.dataStart + e.end;
      if (end > this.available) throw new Error(`safetensors: tensor ${name} lies past the bytes fetched`);
      const n = e.end - e.begin;
      const count = n / DTYPES[e.dtype];
      return { dtype: e.dtype, shape: e.shape.slice(), data: readArray(this.buffer, start, count, e.dtype) };
    }
  }

  const TYPED = {
    F64: [Float64Array, "getFloat64"],
    F32: [Float32Array, "getFloat32"],
    U8: [Uint8Array, "getUint8"],
    I8: [Int8Array, "getInt8"],
    U16: [Uint16Array, "getUint16"],
    I16: [Int16Array, "getInt16"],
    U32: [Uint32Array, "getUint32"],
    I32: [Int32Array, "getInt32"],
  };

  function readArray(buffer, start, count, dtype) {
    if (dtype === "F16" || dtype === "BF16") {
      const conv = dtype === "F16" ? halfToFloat : bf16ToFloat;
      const dv = new DataView(buffer, start, count * 2);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = conv(dv.getUint16(2 * i, true));
      return out;
    }
    const [Type, getter] = TYPED[dtype];
    if (LITTLE_ENDIAN) return new Type(buffer.slice(start, start + count * Type.BYTES_PER_ELEMENT)); // a copy: aligned
    const dv = new DataView(buffer, start, count * Type.BYTES_PER_ELEMENT); // a big-endian machine: element by element
    const out = new Type(count);
    for (let i = 0; i < count; i++) out[i] = dv[getter](i * Type.BYTES_PER_ELEMENT, true);
    return out;
  }

  function isCount(v) {
    return Number.isSafeInteger(v) && v >= 0;
  }

  /**
   * Parse a safetensors file held in an ArrayBuffer (or a Uint8Array). `total` is the whole file's length when the
   * buffer holds only its first bytes (an HTTP Range fetch): tensors past the end can then be listed but not read.
   */
  function parseSafetensors(input, total) {
    const buffer = input instanceof ArrayBuffer ? input : input.buffer.slice(input.byteOffset, input.byteOffset + input.byteLength);
    const available = buffer.byteLength;
    const size = total ?? available;
    if (available < 8) throw new Error("safetensors: file shorter than its 8-byte header length");
    const n = Number(new DataView(buffer).getBigUint64(0, true));
    if (n > MAX_HEADER || 8 + n > available) throw new Error(`safetensors: header length ${n} does not fit the file`);
    let header;
    try {
      header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(buffer, 8, n)));
    } catch (err) {
      throw new Error(`safetensors: the header is not JSON (${err.message})`);
    }
    if (!header || typeof header !== "object" || Array.isArray(header)) throw new Error("safetensors: the header is not a JSON object");
    const dataStart = 8 + n;
    const entries = Object.create(null);
    let metadata = {};
    for (const [name, info] of Object.entries(header)) {
      if (name === "__metadata__") {
        metadata = info;
        continue;
      }
      const { dtype, shape, data_offsets: offsets } = info || {};
      if (!Object.hasOwn(DTYPES, dtype)) throw new Error(`safetensors: tensor ${name} has unsupported dtype ${dtype}`);
      if (!Array.isArray(shape) || !shape.every(isCount)) throw new Error(`safetensors: tensor ${name} has a bad shape`);
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
        throw new Error(`safetensors: tensor ${name} has bad data_offsets`);
      }
      const [begin, end] = offsets;
      const numel = shape.reduce((a, b) => a * b, 1);
      if (end < begin || end - begin !== numel * DTYPES[dtype] || dataStart + end > size) {
        throw new Error(`safetensors: tensor ${name}'s data_offsets do not match its shape or the file`);
      }
      entries[name] = { dtype, shape, begin, end };
    }
    return new SafeTensors(buffer, dataStart, entries, metadata, available);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Fetching. A model's safetensors holds the encoder too; its tensors are stored sorted by name, so the decoder's
  // come first and an HTTP Range request fetches only those (about half the file). A server that ignores Range
  // answers 200 with the whole file, which works as well.

  const FIRST_RANGE = 1 << 16; // the header and the smallest layers in one round trip

  async function fetchOk(url, init) {
    const r = await fetch(url, init);
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r;
  }

  function rangeStart(r) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(r.headers.get("Content-Range") || "");
    return m ? { start: Number(m[1]), total: m[3] === "*" ? null : Number(m[3]) } : null;
  }

  /** The safetensors at `url`, fetching only up to the end of the tensors whose names start with `prefix`. */
  async function fetchSafetensors(url, prefix = "") {
    const first = await fetchOk(url, { headers: { Range: `bytes=0-${FIRST_RANGE - 1}` } });
    const head = await first.arrayBuffer();
    if (first.status !== 206) return parseSafetensors(head); // the server ignored Range: this is the whole file
    const range = rangeStart(first);
    if (!range || range.start !== 0 || range.total === null) return parseSafetensors(await (await fetchOk(url)).arrayBuffer());
    if (head.byteLength >= range.total) return parseSafetensors(head);
    const n = Number(new DataView(head).getBigUint64(0, true));
    if (8 + n > head.byteLength) return parseSafetensors(await (await fetchOk(url)).arrayBuffer()); // a huge header
    const partial = parseSafetensors(head, range.total);
    const wanted = partial.names().filter((k) => k.startsWith(prefix));
    const need = partial.dataStart + Math.max(0, ...wanted.map((k) => partial.entries[k].end));
    if (need <= head.byteLength) return partial;
    const rest = await fetchOk(url, { headers: { Range: `bytes=${head.byteLength}-${need - 1}` } });
    const restRange = rest.status === 206 ? rangeStart(rest) : null;
    if (!restRange || restRange.start !== head.byteLength) return parseSafetensors(await rest.arrayBuffer()); // whole file
    const body = new Uint8Array(need);
    body.set(new Uint8Array(head), 0);
    body.set(new Uint8Array(await rest.arrayBuffer()), head.byteLength);
    return parseSafetensors(body.buffer, range.total);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Activations, matching torch's defaults: exact (erf) GELU, ELU α = 1, LeakyReLU slope 0.01, Softplus β = 1
  // with threshold 20. Computed in float64, so the only differences from torch are its float32 roundings.

  const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

  /** erf(x) to about 1e-15, slowly: its Taylor series near 0, the continued fraction of erfc beyond. */
  function erfSeries(x) {
    const ax = Math.abs(x);
    if (ax < 2.5) {
      const x2 = x * x;
      let term = x;
      let sum = x;
      for (let n = 1; n < 100; n++) {
        term *= -x2 / n;
        const add = term / (2 * n + 1);
        sum += add;
        if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
      }
      return TWO_OVER_SQRT_PI * sum;
    }
    return Math.sign(x) * (1 - erfcPositive(ax));
  }

  /** erfc(x) for x ≥ 0 with a small relative error in the tail (the quantiles need it there). */
  function erfcPositive(x) {
    if (x < 2.5) return 1 - erfSeries(x);
    // erfc(x) = exp(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated from the tail.
    let f = x;
    for (let k = 60; k >= 1; k--) f = x + k / 2 / f;
    return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
  }

  // The fast erf of the GELU (every hidden unit, every decode): a table of erf's Taylor polynomials at steps of
  // 1/64 on [0, 6.5], built from erfSeries when the script loads. Within 1/128 of a point, the degree-6 remainder
  // is below 1e-16; beyond 6.5, erf is ±1 to 1e-19. The k-th derivative is (2/√π)(−1)^(k−1) H_{k−1}(x) e^{−x²}.
  const ERF_STEPS = 64;
  const ERF_MAX = 6.5;
  const ERF_ORDER = 6;
  const ERF_TABLE = (() => {
    const points = Math.round(ERF_MAX * ERF_STEPS) + 1;
    const t = new Float64Array(points * (ERF_ORDER + 1));
    for (let k = 0; k < points; k++) {
      const x = k / ERF_STEPS;
      const g = TWO_OVER_SQRT_PI * Math.exp(-x * x);
      const o = k * (ERF_ORDER + 1);
      t[o] = erfSeries(x);
      let [hPrev, h] = [0, 1]; // Hermite polynomials H_{n−2}, H_{n−1} at x
      let factorial = 1;
      for (let n = 1; n <= ERF_ORDER; n++) {
        factorial *= n;
        t[o + n] = ((n % 2 ? 1 : -1) * g * h) / factorial;
        [hPrev, h] = [h, 2 * x * h - 2 * (n - 1) * hPrev];
      }
    }
    return t;
  })();

  function erf(x) {
    const ax = Math.abs(x);
    if (!(ax < ERF_MAX)) return ax >= ERF_MAX ? Math.sign(x) : NaN;
    const k = Math.round(ax * ERF_STEPS);
    const h = ax - k / ERF_STEPS;
    const o = k * (ERF_ORDER + 1);
    let s = ERF_TABLE[o + ERF_ORDER];
    for (let n = ERF_ORDER - 1; n >= 0; n--) s = s * h + ERF_TABLE[o + n];
    return x < 0 ? -s : s;
  }

  const ACTIVATIONS = {
    gelu: (a) => {
      for (let i = 0; i < a.length; i++) a[i] = 0.5 * a[i] * (1 + erf(a[i] * Math.SQRT1_2));
    },
    relu: (a) => {
      for (let i = 0; i < a.length; i++) if (a[i] < 0) a[i] = 0;
    },
    silu: (a) => {
      for (let i = 0; i < a.length; i++) a[i] = a[i] / (1 + Math.exp(-a[i]));
    },
    tanh: (a) => {
      for (let i = 0; i < a.length; i++) a[i] = Math.tanh(a[i]);
    },
    elu: (a) => {
      for (let i = 0; i < a.length; i++) if (a[i] <= 0) a[i] = Math.expm1(a[i]);
    },
    leaky_relu: (a) => {
      for (let i = 0; i < a.length; i++) if (a[i] < 0) a[i] *= 0.01;
    },
    softplus: (a) => {
      for (let i = 0; i < a.length; i++) if (a[i] <= 20) a[i] = Math.log1p(Math.exp(a[i]));
    },
  };

  // ---------------------------------------------------------------------------------------------------------
  // The decoder: Linear, act, Linear, act, …, Linear (decoder.0, decoder.2, …), sigmoid on the logits.

  const MAX_LAYERS = 32;
  const MAX_WIDTH = 1 << 16;

  function checkConfig(config) {
    if (!config || typeof config !== "object") throw new Error("config.json is not a JSON object");
    const { input_dim: inputDim = 784, hidden_dims: hidden = [128, 32, 16, 4], act_fun: act = "gelu" } = config;
    const ok = (d) => Number.isSafeInteger(d) && d > 0 && d <= MAX_WIDTH;
    if (!ok(inputDim)) throw new Error(`config.json: bad input_dim ${JSON.stringify(inputDim)}`);
    if (!Array.isArray(hidden) || hidden.length < 1 || hidden.length > MAX_LAYERS || !hidden.every(ok)) {
      throw new Error(`config.json: bad hidden_dims ${JSON.stringify(hidden)}`);
    }
    if (hidden[hidden.length - 1] % 2) throw new Error("config.json: the last hidden size must be even (μ and log σ²)");
    const name = String(act).toLowerCase();
    if (!Object.hasOwn(ACTIVATIONS, name)) throw new Error(`config.json: unknown activation ${JSON.stringify(act)}`);
    const latentDim = hidden[hidden.length - 1] / 2;
    return { inputDim, hidden, act: name, latentDim, widths: [latentDim, ...hidden.slice().reverse(), inputDim] };
  }

  class Decoder {
    /** `config`: the parsed config.json; `tensors`: a SafeTensors holding `decoder.<k>.weight` and `.bias`. */
    constructor(config, tensors) {
      const c = checkConfig(config);
      this.config = config;
      this.activation = c.act;
      this.latentDim = c.latentDim;
      this.outputDim = c.inputDim;
      this.layers = [];
      for (let k = 0; k + 1 < c.widths.length; k++) {
        const [nIn, nOut] = [c.widths[k], c.widths[k + 1]];
        const w = tensors.get(`decoder.${2 * k}.weight`);
        const b = tensors.get(`decoder.${2 * k}.bias`);
        const shapeOk = w.shape.length === 2 && w.shape[0] === nOut && w.shape[1] === nIn;
        if (!shapeOk || b.shape.length !== 1 || b.shape[0] !== nOut) {
          throw new Error(`decoder.${2 * k}: expected weight (${nOut}, ${nIn}) and bias (${nOut}), got (${w.shape}) and (${b.shape})`);
        }
        // float64 copies: exact, and V8's loops run faster on them than on float32 reads
        this.layers.push({ w: Float64Array.from(w.data), b: Float64Array.from(b.data), nIn, nOut, out: new Float64Array(nOut) });
      }
      this._act = ACTIVATIONS[c.act];
      this._z = new Float64Array(this.latentDim);
    }

    /** The logits for one code `z` (length latentDim), in a buffer reused by the next call. */
    logits(z) {
      if (!z || z.length !== this.latentDim) throw new RangeError(`z must have ${this.latentDim} values, got ${z && z.length}`);
      const h0 = this._z;
      for (let i = 0; i < h0.length; i++) {
        const v = Number(z[i]);
        if (!Number.isFinite(v)) throw new RangeError(`z[${i}] is not a finite number: ${z[i]}`);
        h0[i] = v;
      }
      let h = h0;
      const last = this.layers.length - 1;
      for (let k = 0; k <= last; k++) {
        const { w, b, nIn, nOut, out } = this.layers[k];
        const n4 = nIn - (nIn % 4);
        for (let o = 0, row = 0; o < nOut; o++, row += nIn) {
          let s0 = 0;
          let s1 = 0;
          let s2 = 0;
          let s3 = 0; // four independent sums: the CPU overlaps them
          let i = 0;
          for (; i < n4; i += 4) {
            s0 += w[row + i] * h[i];
            s1 += w[row + i + 1] * h[i + 1];
            s2 += w[row + i + 2] * h[i + 2];
            s3 += w[row + i + 3] * h[i + 3];
          }
          for (; i < nIn; i++) s0 += w[row + i] * h[i];
          out[o] = b[o] + (s0 + s1 + (s2 + s3));
        }
        if (k < last) this._act(out);
        h = out;
      }
      return h;
    }

    /** Pixel probabilities sigmoid(logits) for one code, into `out` (a new Float32Array by default). */
    decode(z, out = new Float32Array(this.outputDim)) {
      const l = this.logits(z);
      for (let p = 0; p < l.length; p++) out[p] = 1 / (1 + Math.exp(-l[p]));
      return out;
    }

    /** The n×n sweep of vae_hub.viz.latent_grid: Float32Array (n·n·784), row-major, top row = high dims[1]. */
    grid({ n = 15, dims = [0, 1], span = "quantile", base = null } = {}) {
      const [i, j] = checkDims(dims, this.latentDim);
      if (!Number.isInteger(n) || n < 1 || n > 100) throw new RangeError(`grid size must be between 1 and 100, got ${n}`);
      const z = baseCode(base, this.latentDim);
      const axis = gridAxis(n, span);
      const out = new Float32Array(n * n * this.outputDim);
      for (let r = 0; r < n; r++) {
        z[j] = axis[n - 1 - r];
        for (let c = 0; c < n; c++) {
          z[i] = axis[c];
          this.decode(z, out.subarray((r * n + c) * this.outputDim, (r * n + c + 1) * this.outputDim));
        }
      }
      return out;
    }
  }

  function checkDims(dims, latentDim) {
    const [i, j] = Array.from(dims || [], Number);
    const ok = (d) => Number.isInteger(d) && d >= 0 && d < latentDim;
    if (!ok(i) || !ok(j) || i === j) {
      throw new RangeError(`dims must be two different latent dimensions in [0, ${latentDim - 1}], got ${JSON.stringify(dims)}`);
    }
    return [i, j];
  }

  /** A page's values for the dimensions not shown, fitted to `latentDim` as the app's handlers do: extra values
   * are ignored, missing ones are 0 (one set of sliders serves models of every latent size). */
  function fitCode(values, latentDim) {
    const z = new Float64Array(latentDim);
    const given = Array.from(values ?? [], Number);
    for (let k = 0; k < Math.min(latentDim, given.length); k++) {
      if (!Number.isFinite(given[k])) throw new RangeError(`value ${k} is not a finite number: ${values[k]}`);
      z[k] = given[k];
    }
    return z;
  }

  function baseCode(base, latentDim) {
    const z = new Float64Array(latentDim);
    if (base == null) return z;
    if (base.length !== latentDim) throw new RangeError(`base code must have ${latentDim} values, got ${base.length}`);
    for (let k = 0; k < latentDim; k++) {
      z[k] = Number(base[k]);
      if (!Number.isFinite(z[k])) throw new RangeError(`base[${k}] is not a finite number: ${base[k]}`);
    }
    return z;
  }

  // ---------------------------------------------------------------------------------------------------------
  // The grid's axis, as vae_hub.viz.grid_axis: standard-normal quantiles of linspace(0.5/n, 1 − 0.5/n, n), or
  // linspace(−k, k, n).

  /** torch.linspace's values: from the start for the first half, from the end for the second. */
  function linspace(start, end, n) {
    const out = new Float64Array(n);
    if (n === 1) {
      out[0] = start;
      return out;
    }
    const step = (end - start) / (n - 1);
    const half = Math.floor(n / 2);
    for (let k = 0; k < n; k++) out[k] = k < half ? start + step * k : end - step * (n - 1 - k);
    return out;
  }

  /** The standard normal's quantile: Φ(x) = p solved by bisection on the float64 erf (exact to ~1e-13 here). */
  function normalQuantile(p) {
    if (!(p > 0 && p < 1)) throw new RangeError(`quantile of ${p}`);
    let lo = -40;
    let hi = 40;
    for (let k = 0; k < 200 && hi - lo > 1e-15; k++) {
      const mid = 0.5 * (lo + hi);
      const cdf = mid < 0 ? 0.5 * erfcPositive(-mid * Math.SQRT1_2) : 0.5 * (1 + erfSeries(mid * Math.SQRT1_2));
      if (cdf < p) lo = mid;
      else hi = mid;
    }
    return 0.5 * (lo + hi);
  }

  function gridAxis(n, span = "quantile") {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be a positive integer, got ${n}`);
    if (span === "quantile") return linspace(0.5 / n, 1 - 0.5 / n, n).map(normalQuantile);
    const k = Number(span);
    if (!(k > 0) || !Number.isFinite(k)) {
      throw new RangeError(`span must be 'quantile' or a positive number of standard deviations, got ${JSON.stringify(span)}`);
    }
    return linspace(-k, k, n);
  }

  // ---------------------------------------------------------------------------------------------------------
  // The registry: model names → their files' URLs, each fetched once.

  const registry = new Map();

  /** Name a model and where its files are: {config, weights, map} (map: the latent-map cache, optional). */
  function register(name, urls) {
    if (!urls || typeof urls.config !== "string" || typeof urls.weights !== "string") {
      throw new TypeError(`register(${JSON.stringify(name)}, {config, weights, map}): config and weights are URLs`);
    }
    registry.set(String(name), { urls: { ...urls }, model: null, map: null });
  }

  function entry(name) {
    const e = registry.get(String(name));
    if (!e) throw new Error(`unknown model ${JSON.stringify(name)}: register it first (known: ${[...registry.keys()].join(", ") || "none"})`);
    return e;
  }

  /** The model `name`, loaded once: {name, config, latentDim, decoder}. */
  function load(name) {
    const e = entry(name);
    if (!e.model) {
      e.model = (async () => {
        const [config, tensors] = await Promise.all([
          fetchOk(e.urls.config).then((r) => r.json()),
          fetchSafetensors(e.urls.weights, "decoder."),
        ]);
        const decoder = new Decoder(config, tensors);
        return { name: String(name), config, latentDim: decoder.latentDim, decoder };
      })();
      e.model.catch(() => (e.model = null)); // a failed load is tried again next time
    }
    return e.model;
  }

  /** The model's latent map (posterior means of test digits): {mu: Float32Array (count·dim), labels, count, dim}. */
  function loadMap(name) {
    const e = entry(name);
    if (!e.urls.map) return Promise.reject(new Error(`model ${JSON.stringify(name)} has no latent map URL`));
    if (!e.map) {
      e.map = (async () => {
        const st = parseSafetensors(await (await fetchOk(e.urls.map)).arrayBuffer());
        const mu = st.get("mu");
        const labels = st.get("labels");
        if (mu.shape.length !== 2 || labels.shape.length !== 1 || labels.shape[0] !== mu.shape[0]) {
          throw new Error(`${e.urls.map}: expected mu (N, D) and labels (N), got (${mu.shape}) and (${labels.shape})`);
        }
        const toFloat = mu.data instanceof Float32Array ? mu.data : Float32Array.from(mu.data);
        return { mu: toFloat, labels: Uint8Array.from(labels.data), count: mu.shape[0], dim: mu.shape[1] };
      })();
      e.map.catch(() => (e.map = null));
    }
    return e.map;
  }

  /** Decode one code with the model `name`: a Promise of the 784 pixel probabilities as a plain array. */
  async function decode(name, z) {
    const m = await load(name);
    return Array.from(m.decoder.decode(z));
  }

  /** latent_grid for the model `name`: a Promise of Float32Array (n·n·784). */
  async function latentGrid(name, options) {
    return (await load(name)).decoder.grid(options);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Drawing helpers.

  // matplotlib's tab10, the colours of the classes 0–9 (as in the app's scatter plot).
  const TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const MINUS = "\u2212";

  function fmt(v, decimals) {
    const s = Math.abs(v) < 0.5 * 10 ** -decimals ? (0).toFixed(decimals) : v.toFixed(decimals);
    return s.replace("-", MINUS);
  }

  function signed(v, decimals = 2) {
    const s = fmt(v, decimals);
    return s.startsWith(MINUS) ? s : "+" + s;
  }

  /** Round tick positions in [lo, hi], about `target` of them, and the decimals their labels need. */
  function niceTicks(lo, hi, target = 6) {
    const span = hi - lo;
    if (!(span > 0)) return { ticks: [lo], decimals: 2 };
    const raw = span / target;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw * (1 - 1e-9));
    let decimals = 0;
    while (decimals < 12 && Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-6) decimals++;
    const ticks = [];
    for (let t = Math.ceil(lo / step - 1e-9); t * step <= hi + 1e-9 * step; t++) ticks.push(t * step);
    return { ticks, decimals };
  }

  const STYLE_ID = "vaehub-style";
  const STYLE = `
.vaehub-live { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.vaehub-map { position: relative; flex: 1 1 320px; max-width: 640px; aspect-ratio: 5 / 4; touch-action: none;
  user-select: none; -webkit-user-select: none; cursor: crosshair; }
.vaehub-map canvas { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; }
.vaehub-side { display: flex; flex-direction: column; gap: 6px; min-width: 168px; }
.vaehub-side canvas { width: 168px; height: 168px; image-rendering: pixelated; background: #000; }
.vaehub-coords { font: 13px/1.4 ui-monospace, monospace; font-variant-numeric: tabular-nums; max-width: 220px; }
.vaehub-hint { font-size: 12px; opacity: 0.7; max-width: 220px; }
.vaehub-grid { display: block; max-width: 100%; }
`;

  function injectStyle(doc) {
    if (doc.getElementById(STYLE_ID)) return;
    const s = doc.createElement("style");
    s.id = STYLE_ID;
    s.textContent = STYLE;
    doc.head.appendChild(s);
  }

  function el(doc, tag, props = {}) {
    const e = doc.createElement(tag);
    Object.assign(e, props);
    return e;
  }

  /** Size a canvas to `w`×`h` CSS pixels at the device's pixel ratio; returns its 2-D context in CSS units. */
  function sizeCanvas(canvas, w, h) {
    const dpr = global.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(w * dpr));
    canvas.height = Math.max(1, Math.round(h * dpr));
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  const instances = new Map(); // element id → controller, for page code that has no reference (Gradio's js=)

  // ---------------------------------------------------------------------------------------------------------
  // The live latent map.

  const MARGIN = { left: 52, right: 74, top: 12, bottom: 42 }; // the right margin holds the colour key
  const TAP_SLOP = 6; // CSS px a press may travel and still be a click (a tap with a finger wobbles)

  class LatentMap {
    constructor(container, options = {}) {
      const doc = container.ownerDocument;
      injectStyle(doc);
      const ids = { map: "latent-map", decode: "latent-decode", coords: "latent-coords", ...(options.ids || {}) };
      this.container = container;
      this.root = el(doc, "div", { className: "vaehub-live" });
      this.mapElement = el(doc, "div", { id: ids.map, className: "vaehub-map", role: "img" });
      this.mapElement.setAttribute("aria-label", "latent map: posterior means of test digits, coloured by class");
      this.base = el(doc, "canvas");
      this.overlay = el(doc, "canvas");
      this.mapElement.append(this.base, this.overlay);
      const side = el(doc, "div", { className: "vaehub-side" });
      this.decodeCanvas = options.decodeCanvas || el(doc, "canvas", { id: ids.decode, width: 28, height: 28 });
      this.decodeCanvas.width = 28;
      this.decodeCanvas.height = 28;
      this.coords = el(doc, "div", { id: ids.coords, className: "vaehub-coords" });
      const hint = el(doc, "div", { className: "vaehub-hint" });
      hint.textContent = "Move over the map to decode; click or tap to pin a point, again to release it.";
      if (!options.decodeCanvas) side.append(this.decodeCanvas);
      side.append(this.coords, hint);
      this.root.append(this.mapElement, side);
      container.append(this.root);

      this._ctx = this.decodeCanvas.getContext("2d");
      this._image = this._ctx.createImageData(28, 28);
      this._probs = new Float32Array(784);
      this.model = null; // {name, latentDim, decoder}
      this.map = null; // {mu, labels, count, dim}
      this.dims = [0, 1];
      this.extent = null; // [x0, x1, y0, y1]: the plotted region, the only points ever decoded
      this._fixedExtent = null;
      this._base = null; // the values of the dimensions not shown
      this._marked = null;
      this.point = null; // [x, y] in the shown dims
      this.pinned = false;
      this._size = [0, 0];
      this._down = null;
      this._token = 0;
      if (options.extent) this.setExtent(options.extent);
      this._listen();
      this._resize = new ResizeObserver(() => this._layout());
      this._resize.observe(this.mapElement);
      instances.set(ids.map, this);
      this.ready = this.setModel(options.model ?? [...registry.keys()][0], options);
    }

    /** Show the model `name` (its decoder and its map); keeps the point (clamped) and the pin. */
    async setModel(name, { dims, base } = {}) {
      const token = ++this._token;
      const [model, map] = await Promise.all([load(name), loadMap(name)]);
      if (token !== this._token) return this; // a later setModel won
      if (map.dim !== model.latentDim) throw new Error(`the map of ${name} has ${map.dim} dimensions, its decoder ${model.latentDim}`);
      this.model = model;
      this.map = map;
      const d = model.latentDim;
      const wanted = dims || this.dims;
      this.dims = wanted[0] < d && wanted[1] < d && wanted[0] !== wanted[1] ? checkDims(wanted, d) : [0, 1];
      this._base = fitCode(base ?? this._base, d);
      if (this._marked && this._marked.length !== d) this._marked = null;
      this._rescale();
      return this;
    }

    /** Show the latent dimensions `dims` = [i, j] (i →, j ↑); the point keeps its values in them. */
    setDims(dims) {
      const [i, j] = checkDims(dims, this._loaded().latentDim);
      const z = this.point ? this._code() : null;
      this.dims = [i, j];
      if (z) this.point = [z[i], z[j]];
      this._rescale();
      return this;
    }

    /** The values of the dimensions not shown: a code (those of the shown dims are unused; see fitCode). */
    setBase(base) {
      this._base = fitCode(base, this._loaded().latentDim);
      if (this.point) this._show();
      return this;
    }

    /** A code to mark with a star (the user's digit), or null. */
    setMarked(code) {
      this._marked = code == null ? null : baseCode(code, this._loaded().latentDim);
      this._drawBase();
      this._drawOverlay();
      return this;
    }

    /** Fix the plotted region to [x0, x1, y0, y1], or null to fit it to the map's points. */
    setExtent(extent) {
      const e = extent ? Array.from(extent, Number) : null;
      if (e && !(e.length === 4 && e.every(Number.isFinite) && e[0] < e[1] && e[2] < e[3])) {
        throw new RangeError(`extent must be [x0, x1, y0, y1] with x0 < x1 and y0 < y1, got ${JSON.stringify(extent)}`);
      }
      this._fixedExtent = e;
      this._rescale();
      return this;
    }

    /** Pin the point [x, y] (in the shown dims; clamped to the region), or the current point. */
    pin(point) {
      this._loaded();
      if (point) this.point = this._clamp(Number(point[0]), Number(point[1]));
      if (!this.point) throw new Error("pin(): no point yet; pass [x, y]");
      this.pinned = true;
      this._show();
      return this;
    }

    /** Release the pin: the pointer decodes again. */
    unpin() {
      this.pinned = false;
      this._show();
      return this;
    }

    /** The code last decoded (a plain array, all latentDim values), or null. */
    get z() {
      return this.point ? Array.from(this._code()) : null;
    }

    /** The plotted region's box in the page's CSS pixels (client coordinates). */
    plotRect() {
      const r = this.mapElement.getBoundingClientRect();
      const [w, h] = this._size;
      return { left: r.left + MARGIN.left, top: r.top + MARGIN.top, width: w - MARGIN.left - MARGIN.right, height: h - MARGIN.top - MARGIN.bottom };
    }

    destroy() {
      this._resize.disconnect();
      this._abort.abort();
      this.root.remove();
      if (instances.get(this.mapElement.id) === this) instances.delete(this.mapElement.id);
    }

    // --- internals ---

    _loaded() {
      if (!this.model) throw new Error("the latent map has no model yet: await its ready promise first");
      return this.model;
    }

    _code() {
      const z = Float64Array.from(this._base);
      z[this.dims[0]] = this.point[0];
      z[this.dims[1]] = this.point[1];
      return z;
    }

    _listen() {
      this._abort = new AbortController();
      const opts = { signal: this._abort.signal };
      const m = this.mapElement;
      m.addEventListener(
        "pointerdown",
        (e) => {
          if (!this.model || (e.pointerType === "mouse" && e.button !== 0)) return;
          this._down = { id: e.pointerId, x: e.clientX, y: e.clientY };
          m.setPointerCapture(e.pointerId); // a drag that leaves the map keeps decoding (at the region's edge)
          if (!this.pinned) this._pointer(e);
        },
        opts,
      );
      m.addEventListener(
        "pointermove",
        (e) => {
          if (this.model && !this.pinned) this._pointer(e);
        },
        opts,
      );
      m.addEventListener(
        "pointerup",
        (e) => {
          const d = this._down;
          this._down = null;
          if (!this.model || !d || d.id !== e.pointerId) return;
          if (Math.hypot(e.clientX - d.x, e.clientY - d.y) > TAP_SLOP) return; // a drag, not a click
          this.pinned = !this.pinned;
          this._pointer(e);
        },
        opts,
      );
      m.addEventListener("pointercancel", () => (this._down = null), opts);
    }

    _pointer(e) {
      const startTime = performance.now();
      const r = this.mapElement.getBoundingClientRect();
      const [w, h] = this._size;
      const pw = w - MARGIN.left - MARGIN.right;
      const ph = h - MARGIN.top - MARGIN.bottom;
      if (!(pw > 0 && ph > 0)) return;
      const [x0, x1, y0, y1] = this.extent;
      const fx = (e.clientX - r.left - MARGIN.left) / pw;
      const fy = (e.clientY - r.top - MARGIN.top) / ph;
      this.point = this._clamp(x0 + fx * (x1 - x0), y1 - fy * (y1 - y0));
      this._show(e.timeStamp, startTime);
    }

    _clamp(x, y) {
      const [x0, x1, y0, y1] = this.extent;
      return [Math.min(x1, Math.max(x0, x)), Math.min(y1, Math.max(y0, y))];
    }

    /**
     * Decode the point, draw the digit, the marker and the coordinates; then tell the page with a `vaehub:point`
     * event. Its times (performance.now() clock): the pointer event's timeStamp, when the handler started, when all
     * was drawn; null for a redraw that no pointer event caused.
     */
    _show(eventTime = null, startTime = null) {
      if (!this.point || !this.model) return;
      const z = this._code();
      const probs = this.model.decoder.decode(z, this._probs);
      const px = this._image.data;
      for (let p = 0; p < 784; p++) {
        const v = Math.round(probs[p] * 255);
        px[4 * p] = px[4 * p + 1] = px[4 * p + 2] = v;
        px[4 * p + 3] = 255;
      }
      this._ctx.putImageData(this._image, 0, 0);
      this._drawOverlay();
      const text = Array.from(z, (v, k) => `z${k} = ${signed(v)}`).join(", ");
      this.coords.textContent = this.pinned ? `${text} (pinned)` : text;
      const drawnTime = performance.now();
      const detail = { z: Array.from(z), point: this.point.slice(), pinned: this.pinned, eventTime, startTime, drawnTime };
      this.mapElement.dispatchEvent(new CustomEvent("vaehub:point", { detail, bubbles: true }));
    }

    _rescale() {
      if (!this.map) return;
      const [i, j] = this.dims;
      if (this._fixedExtent) this.extent = this._fixedExtent.slice();
      else {
        // matplotlib's autoscale: the points' range with 5 % margins
        const { mu, count, dim } = this.map;
        let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
        for (let k = 0; k < count; k++) {
          const x = mu[k * dim + i];
          const y = mu[k * dim + j];
          if (x < x0) x0 = x;
          if (x > x1) x1 = x;
          if (y < y0) y0 = y;
          if (y > y1) y1 = y;
        }
        const pad = (a, b) => (b > a ? [a - 0.05 * (b - a), b + 0.05 * (b - a)] : [a - 1, a + 1]);
        this.extent = count ? [...pad(x0, x1), ...pad(y0, y1)] : [-3, 3, -3, 3];
      }
      if (this.point) this.point = this._clamp(...this.point);
      this._layout(true);
    }

    _layout(force = false) {
      const w = this.mapElement.clientWidth;
      const h = this.mapElement.clientHeight;
      if (!w || !h || !this.map) return; // hidden (a closed tab): drawn when it is shown
      if (!force && w === this._size[0] && h === this._size[1]) return;
      this._size = [w, h];
      this._drawBase();
      this._drawOverlay();
      if (this.point) this._show();
    }

    _drawBase() {
      const [w, h] = this._size;
      if (!w || !this.map) return;
      const ctx = sizeCanvas(this.base, w, h);
      const ink = getComputedStyle(this.mapElement).color || "#000";
      const [i, j] = this.dims;
      const [x0, x1, y0, y1] = this.extent;
      const { left, top } = MARGIN;
      const pw = w - MARGIN.left - MARGIN.right;
      const ph = h - MARGIN.top - MARGIN.bottom;
      const sx = (x) => left + ((x - x0) / (x1 - x0)) * pw;
      const sy = (y) => top + ((y1 - y) / (y1 - y0)) * ph;
      ctx.clearRect(0, 0, w, h);

      // the points, in the file's order (as matplotlib draws them, no class always on top)
      ctx.save();
      ctx.beginPath();
      ctx.rect(left, top, pw, ph);
      ctx.clip();
      ctx.globalAlpha = 0.7;
      const { mu, labels, count, dim } = this.map;
      const r = Math.max(1.2, Math.min(2.2, pw / 260));
      for (let k = 0; k < count; k++) {
        ctx.fillStyle = TAB10[labels[k] % 10];
        ctx.beginPath();
        ctx.arc(sx(mu[k * dim + i]), sy(mu[k * dim + j]), r, 0, 2 * Math.PI);
        ctx.fill();
      }
      ctx.restore();

      // the axes: a box, ticks with labels, the dimensions' names
      ctx.strokeStyle = ink;
      ctx.fillStyle = ink;
      ctx.lineWidth = 1;
      ctx.strokeRect(left + 0.5, top + 0.5, pw - 1, ph - 1);
      ctx.font = "11px sans-serif";
      const xt = niceTicks(x0, x1, Math.max(3, Math.round(pw / 70)));
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      for (const t of xt.ticks) {
        const x = Math.round(sx(t)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(x, top + ph);
        ctx.lineTo(x, top + ph + 4);
        ctx.stroke();
        ctx.fillText(fmt(t, xt.decimals), x, top + ph + 6);
      }
      const yt = niceTicks(y0, y1, Math.max(3, Math.round(ph / 50)));
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (const t of yt.ticks) {
        const y = Math.round(sy(t)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(left - 4, y);
        ctx.lineTo(left, y);
        ctx.stroke();
        ctx.fillText(fmt(t, yt.decimals), left - 6, y);
      }
      ctx.font = "12px sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "bottom";
      ctx.fillText(`z${i}`, left + pw / 2, h - 2);
      ctx.save();
      ctx.translate(12, top + ph / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textBaseline = "middle";
      ctx.fillText(`z${j}`, 0, 0);
      ctx.restore();

      // the colour key
      const kx = left + pw + 14;
      const line = Math.min(18, (ph - 16) / 10);
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      ctx.font = "11px sans-serif";
      ctx.fillText("digit", kx, top + 6);
      for (let c = 0; c < 10; c++) {
        const y = top + 16 + (c + 0.5) * line;
        ctx.fillStyle = TAB10[c];
        ctx.fillRect(kx, y - 5, 10, 10);
        ctx.fillStyle = ink;
        ctx.fillText(String(c), kx + 15, y);
      }

      if (this._marked) {
        const [mx, my] = this._clamp(this._marked[i], this._marked[j]);
        star(ctx, sx(mx), sy(my), 9);
      }
    }

    _drawOverlay() {
      const [w, h] = this._size;
      if (!w) return;
      const dpr = global.devicePixelRatio || 1;
      if (this.overlay.width !== Math.round(w * dpr) || this.overlay.height !== Math.round(h * dpr)) sizeCanvas(this.overlay, w, h);
      const ctx = this.overlay.getContext("2d");
      ctx.clearRect(0, 0, w, h);
      if (!this.point) return;
      const [x0, x1, y0, y1] = this.extent;
      const pw = w - MARGIN.left - MARGIN.right;
      const ph = h - MARGIN.top - MARGIN.bottom;
      const x = MARGIN.left + ((this.point[0] - x0) / (x1 - x0)) * pw;
      const y = MARGIN.top + ((y1 - this.point[1]) / (y1 - y0)) * ph;
      ctx.strokeStyle = "rgba(0, 0, 0, 0.35)";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(MARGIN.left, y);
      ctx.lineTo(MARGIN.left + pw, y);
      ctx.moveTo(x, MARGIN.top);
      ctx.lineTo(x, MARGIN.top + ph);
      ctx.stroke();
      ctx.beginPath();
      ctx.arc(x, y, this.pinned ? 7 : 5, 0, 2 * Math.PI);
      ctx.lineWidth = 3;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "#000";
      ctx.stroke();
      if (this.pinned) {
        ctx.fillStyle = "rgba(255, 215, 0, 0.9)";
        ctx.fill();
      }
    }
  }

  function star(ctx, x, y, r) {
    ctx.beginPath();
    for (let k = 0; k < 10; k++) {
      const a = -Math.PI / 2 + (k * Math.PI) / 5;
      const rr = k % 2 ? r * 0.45 : r;
      ctx.lineTo(x + rr * Math.cos(a), y + rr * Math.sin(a));
    }
    ctx.closePath();
    ctx.fillStyle = "yellow";
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "#000";
    ctx.stroke();
  }

  // ---------------------------------------------------------------------------------------------------------
  // The latent grid: the decoded n×n sweep, drawn as vae_hub's make_grid (2 px white padding), with the axis values.

  const GRID_MARGIN = { left: 56, bottom: 40, top: 4, right: 8 };
  const PAD = 2;

  class LatentGrid {
    constructor(container, options = {}) {
      const doc = container.ownerDocument;
      injectStyle(doc);
      const id = (options.ids && options.ids.grid) || "latent-grid";
      this.container = container;
      this.canvas = el(doc, "canvas", { id, className: "vaehub-grid" });
      this.canvas.setAttribute("role", "img");
      this.canvas.setAttribute("aria-label", "decoded latent grid");
      container.append(this.canvas);
      this.options = { model: null, n: 15, dims: [0, 1], span: "quantile", base: null, maxSide: 600 };
      this.images = null;
      this.axis = null;
      this._token = 0;
      this._width = 0;
      this._resize = new ResizeObserver(() => {
        const w = this.container.clientWidth;
        if (w && w !== this._width && this.images) this._draw();
      });
      this._resize.observe(container);
      instances.set(id, this);
      this.ready = this.set({ model: options.model ?? [...registry.keys()][0], ...options });
    }

    /** Change any of {model, n, dims, span, base, maxSide} and redraw; resolves once drawn. `base` holds the
     * dimensions not swept (fitted to the model's latent size as the map's setBase does). */
    async set(changes = {}) {
      const token = ++this._token;
      const next = { ...this.options };
      for (const k of ["model", "n", "dims", "span", "base", "maxSide"]) if (changes[k] !== undefined) next[k] = changes[k];
      const model = await load(next.model);
      if (token !== this._token) return this;
      const d = model.latentDim;
      if (changes.dims === undefined && (next.dims[0] >= d || next.dims[1] >= d)) next.dims = [0, 1];
      const n = Number(next.n);
      const base = next.base == null ? null : fitCode(next.base, d);
      this.images = model.decoder.grid({ n, dims: next.dims, span: next.span, base });
      this.axis = gridAxis(n, next.span);
      this.options = { ...next, n };
      this.model = model;
      this._draw();
      return this;
    }

    _draw() {
      const { n, dims, maxSide } = this.options;
      const S = n * (28 + PAD) + PAD; // make_grid's side in pixels
      const img = new ImageData(S, S);
      img.data.fill(255);
      for (let r = 0; r < n; r++) {
        for (let c = 0; c < n; c++) {
          const off = (r * n + c) * 784;
          for (let y = 0; y < 28; y++) {
            for (let x = 0; x < 28; x++) {
              const v = Math.round(this.images[off + y * 28 + x] * 255);
              const q = 4 * ((PAD + r * (28 + PAD) + y) * S + PAD + c * (28 + PAD) + x);
              img.data[q] = img.data[q + 1] = img.data[q + 2] = v;
            }
          }
        }
      }
      this.pixels = img; // the grid at one pixel per image pixel, as drawn
      const src = el(this.canvas.ownerDocument, "canvas", { width: S, height: S });
      src.getContext("2d").putImageData(img, 0, 0);

      const dpr = global.devicePixelRatio || 1;
      this._width = this.container.clientWidth;
      const avail = Math.min(maxSide, (this._width || maxSide) - GRID_MARGIN.left - GRID_MARGIN.right);
      // whole device pixels per image pixel where there is room (crisp); shrunk to fit where there is not (a phone)
      const scale = avail * dpr >= S ? Math.floor((avail * dpr) / S) / dpr : Math.max(1, avail) / S;
      const side = S * scale;
      const w = GRID_MARGIN.left + side + GRID_MARGIN.right;
      const h = GRID_MARGIN.top + side + GRID_MARGIN.bottom;
      this.canvas.style.width = `${w}px`;
      this.canvas.style.height = `${h}px`;
      const ctx = sizeCanvas(this.canvas, w, h);
      ctx.imageSmoothingEnabled = scale * dpr < 1; // enlarged: sharp pixels; reduced: averaged, not dropped
      ctx.drawImage(src, GRID_MARGIN.left, GRID_MARGIN.top, side, side);

      const ink = getComputedStyle(this.canvas).color || "#000";
      ctx.fillStyle = ink;
      ctx.font = "11px sans-serif";
      const centre = (k) => (PAD + k * (28 + PAD) + 14) * scale;
      const every = Math.max(1, Math.ceil(36 / ((28 + PAD) * scale))); // labels at least 36 px apart
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      for (let c = 0; c < n; c += every) ctx.fillText(signed(this.axis[c]), GRID_MARGIN.left + centre(c), GRID_MARGIN.top + side + 4);
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (let r = 0; r < n; r += every) ctx.fillText(signed(this.axis[n - 1 - r]), GRID_MARGIN.left - 4, GRID_MARGIN.top + centre(r));
      ctx.font = "12px sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "bottom";
      ctx.fillText(`z${dims[0]} \u2192`, GRID_MARGIN.left + side / 2, h - 2);
      ctx.save();
      ctx.translate(10, GRID_MARGIN.top + side / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textBaseline = "middle";
      ctx.fillText(`z${dims[1]} \u2192`, 0, 0);
      ctx.restore();
    }

    destroy() {
      this._resize.disconnect();
      this.canvas.remove();
      if (instances.get(this.canvas.id) === this) instances.delete(this.canvas.id);
    }
  }

  global.vaeHub = Object.freeze({
    version: "1",
    register,
    load,
    loadMap,
    decode,
    latentGrid,
    gridAxis,
    parseSafetensors,
    fetchSafetensors,
    Decoder,
    erf,
    mountLatentMap: (container, options) => new LatentMap(container, options),
    mountLatentGrid: (container, options) => new LatentGrid(container, options),
    get: (id) => instances.get(id) || null,
  });
})(typeof window !== "undefined" ? window : globalThis);
