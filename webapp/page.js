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
  receiver(element, props, trigger) {
    element.addEventListener("vaehub-set", (e) => { props.value = e.detail; trigger("input"); });
  },
  // The latent map: a click inside the plotted region (never the margin or the colour bar) is marked and decoded.
  map(element) {
    element.addEventListener("click", (e) => {
      const img = e.target.closest(".map .plot img");
      if (!img) return;
      const map = img.closest(".map"), r = img.getBoundingClientRect();
      const num = (k) => map.dataset[k].split(" ").map(Number);
      const [l, t, w, h] = num("box"), [x0, x1] = num("xlim"), [y0, y1] = num("ylim");
      const u = ((e.clientX - r.left) / r.width - l) / w, v = ((e.clientY - r.top) / r.height - t) / h;
      if (!(u >= 0 && u <= 1 && v >= 0 && v <= 1)) return;
      const m = map.querySelector(".marker");
      m.hidden = false;
      m.style.left = (l + u * w) * 100 + "%";
      m.style.top = (t + v * h) * 100 + "%";
      vaeHubPage.set("map_point", [x0 + u * (x1 - x0), y1 - v * (y1 - y0)]);
    });
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
  // of the swept dimensions, and (button) "start from my digit's code" for a 2-D model.
  layout(dims, sliders, button, model, x, y) {
    const d = dims[model] || 2, up = (o) => ({ __type__: "update", ...o });
    [x, y] = vaeHubPage.axes(dims, model, x, y);
    const out = [up({ value: x, visible: d > 2 }), up({ value: y, visible: d > 2 })];
    for (let i = 0; i < sliders; i++) out.push(up({ visible: i < d && i !== x && i !== y }));
    return button ? [...out, up({ visible: d > 2 })] : out;
  },
};
