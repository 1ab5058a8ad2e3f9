// The page's behaviour in the browser, loaded once in the page's head; each widget's js_on_load calls its part.
window.vaeHubPage = {
  // The one widget for digits. Pointer events (mouse, pen and touch alike): on pen-up the canvas becomes the value
  // as one PNG data URL; an upload sends the file as it is (Gradio's upload route; the value is the reference it
  // answers) and a pick the example's PNG. Each sends 'input' once. A picture is shown over the canvas; drawing
  // starts a new, empty canvas.
  pad(element, props, trigger, upload) {
    const c = element.querySelector("canvas"), ctx = c.getContext("2d"), shown = element.querySelector("img");
    const file = element.querySelector("input[type=file]"), note = element.querySelector(".note");
    let last = null;
    const show = (src, text = "draw, upload or pick") => {
      ctx.clearRect(0, 0, c.width, c.height);
      shown.hidden = !src;
      if (src) shown.src = src;
      note.textContent = text;
    };
    const send = (value) => { props.value = value; trigger("input"); };
    const at = (e) => {
      const r = c.getBoundingClientRect();
      return [((e.clientX - r.left) * c.width) / r.width, ((e.clientY - r.top) * c.height) / r.height];
    };
    const line = (a, b) => {
      Object.assign(ctx, { lineWidth: 16, lineCap: "round", lineJoin: "round", strokeStyle: "#000" });
      ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
    };
    c.addEventListener("pointerdown", (e) => {
      e.preventDefault(); c.setPointerCapture(e.pointerId);
      if (!shown.hidden) show(null);
      last = at(e); line(last, last);
    });
    c.addEventListener("pointermove", (e) => {
      if (!last) return;
      const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
      for (const ev of events.length ? events : [e]) { const p = at(ev); line(last, p); last = p; }
    });
    const end = () => { if (last) { last = null; send(c.toDataURL("image/png")); } };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    // A file chosen, pasted (click the widget, then paste) or dropped is uploaded as it is.
    const take = async (f) => {
      if (!f) return;
      show(URL.createObjectURL(f), "uploading…");
      try { const up = await upload(f); show(shown.src); send(up.path); }
      catch (err) { show(null, "upload refused: " + String(err.message || err).slice(0, 80)); }
    };
    file.addEventListener("change", () => { const f = file.files[0]; file.value = ""; take(f); });
    element.addEventListener("paste", (e) => take([...e.clipboardData.files].find((f) => f.type.startsWith("image/"))));
    element.addEventListener("dragover", (e) => e.preventDefault());
    element.addEventListener("drop", (e) => { e.preventDefault(); take(e.dataTransfer.files[0]); });
    element.addEventListener("vaehub-set", (e) => { show(e.detail); send(e.detail); });
    element.querySelector(".clear").addEventListener("click", () => { show(null); props.value = ""; trigger("clear"); });
    if (String(props.value || "").startsWith("data:")) show(props.value);
  },
  // Examples: a click sends the example's PNG to the widget it is for (a pick always replaces what was there).
  gallery(element) {
    element.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-for]");
      if (b) vaeHubPage.set(b.dataset.for, b.querySelector("img").src);
    });
  },
  set(id, value) {
    document.querySelector(`#${id} [data-receiver]`).dispatchEvent(new CustomEvent("vaehub-set", { bubbles: true, detail: value }));
  },
  // Two different dimensions that the model has (dims: the models' latent sizes).
  axes(dims, model, x, y) {
    const d = dims[model] || 2;
    if (d === 2) [x, y] = [0, 1];
    x = Math.min(x, d - 1);
    if (y === x || y >= d) y = (x + 1) % d;
    return [x, y];
  },
  // Controls that do not apply are hidden: a 2-D model's axes (its grid and map are the whole space), the sliders
  // of the dimensions shown, and "start from my digit's code" for a 2-D model.
  layout(dims, sliders, model, x, y) {
    const d = dims[model] || 2, up = (o) => ({ __type__: "update", ...o });
    [x, y] = vaeHubPage.axes(dims, model, x, y);
    const out = [up({ value: x, visible: d > 2 }), up({ value: y, visible: d > 2 })];
    for (let i = 0; i < sliders; i++) out.push(up({ visible: i < d && i !== x && i !== y }));
    return [...out, up({ visible: d > 2 })];
  },

  // --- The latent map and grid, decoded in the page by vaehub.js (window.vaeHub): no request once loaded. ---
  live: null, // {models: {name: {config, weights, map}}, titles, sizes, sources}
  codes: {}, // the current digit's μ for each model, from the reconstructions (data-mu); {} when there is none
  start(live) {
    if (vaeHubPage.live) return;
    vaeHubPage.live = live;
    for (const [name, urls] of Object.entries(live.models)) vaeHub.register(name, urls);
  },
  results(element, watch) {
    watch("value", () => {
      vaeHubPage.codes = Object.fromEntries([...element.querySelectorAll("[data-mu]")]
        .map((f) => [f.dataset.model, JSON.parse(f.dataset.mu)]));
      vaeHubPage.mark();
    });
  },
  signed: (v) => (v < 0 ? "\u2212" : "+") + Math.abs(v).toFixed(2),
  // A caption and a line for messages, above the map's or the grid's own elements.
  head(element) {
    element.insertAdjacentHTML("afterbegin", '<p class="caption"></p><p class="warn" hidden></p>');
  },
  say(which, text) {
    const warn = document.querySelector(`#${which} .warn`);
    if (warn) { warn.textContent = text; warn.hidden = !text; }
  },
  liveMap(element, live) {
    vaeHubPage.start(live);
    vaeHubPage.head(element);
    vaeHub.mountLatentMap(element, { model: Object.keys(live.models)[0] }).ready.then(vaeHubPage.mapShown);
  },
  mapShown() {
    const map = vaeHub.get("latent-map"), [i, j] = map.dims, name = map.model.name;
    document.querySelector("#map .caption").textContent =
      `${vaeHubPage.live.titles[name]}: μ${i} →, μ${j} ↑ (${vaeHubPage.live.sources[name]})`;
    vaeHubPage.mark();
  },
  mark() { // the star at the digit's code, on the map's model
    const map = vaeHub.get("latent-map");
    if (map && map.model) map.setMarked(vaeHubPage.codes[map.model.name] || null);
  },
  showMap(model, x, y, ...z) {
    const map = vaeHub.get("latent-map");
    if (!map) return; // its tab has not opened yet: it mounts with the controls' first values
    const dims = vaeHubPage.axes(vaeHubPage.live.sizes, model, x, y);
    vaeHubPage.say("map", "");
    if (!map.model || map.model.name !== model) {
      map.setModel(model, { dims, base: z }).then(vaeHubPage.mapShown);
      return;
    }
    if (dims[0] !== map.dims[0] || dims[1] !== map.dims[1]) map.setDims(dims);
    map.setBase(z); // the digit follows at once
    vaeHubPage.mapShown();
  },
  liveGrid(element, live) {
    vaeHubPage.start(live);
    vaeHubPage.head(element);
    vaeHub.mountLatentGrid(element, { model: Object.keys(live.models)[0] }).ready.then(vaeHubPage.gridShown);
  },
  gridShown(grid) {
    const { model, dims, span, base } = grid.options, d = vaeHubPage.live.sizes[model];
    const swept = span === "quantile" ? "Gaussian quantiles" : `\u00b1${span} \u03c3`;
    const held = [...Array(d).keys()].filter((k) => !dims.includes(k))
      .map((k) => `z${k} = ${vaeHubPage.signed(base ? base[k] || 0 : 0)}`);
    document.querySelector("#grid .caption").textContent = `${vaeHubPage.live.titles[model]}: decoded over ` +
      `z${dims[0]} and z${dims[1]} (${swept}${held.length ? "; other dimensions at " + held.join(", ") : ""})`;
  },
  // The grid's controls → the grid, at most once a frame (a slider being dragged sends many changes); the samples
  // shown in its place are cleared.
  showGrid(model, x, y, range, k, n, ...z) {
    const idle = !vaeHubPage.gridNext;
    vaeHubPage.gridNext = { model, n, base: z, dims: vaeHubPage.axes(vaeHubPage.live.sizes, model, x, y),
      span: range === "quantile" ? "quantile" : k };
    if (idle) {
      requestAnimationFrame(() => {
        const grid = vaeHub.get("latent-grid"), next = vaeHubPage.gridNext;
        vaeHubPage.gridNext = null;
        vaeHubPage.say("grid", "");
        if (grid) grid.set(next).then(vaeHubPage.gridShown);
      });
    }
    return [""];
  },
  // "Start from my digit's code": the sliders at the digit's μ (clamped to their range).
  myCode(which, model, z) {
    const code = vaeHubPage.codes[model];
    if (!code) {
      vaeHubPage.say(which, "There is no digit yet: draw, upload or pick one in the Reconstruct tab first.");
      return z;
    }
    return z.map((v, k) => (k < code.length ? Math.round(Math.min(3, Math.max(-3, code[k])) * 100) / 100 : 0));
  },
};
