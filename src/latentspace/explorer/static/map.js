// The map: test codes drawn on a <canvas>, pointer positions turned into map units and back.

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#843c39", "#7b4173", "#3182bd"];
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]]; // viridis stops
const MARGIN = 0.05;

function extent(values) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return [lo - MARGIN * (hi - lo || 1), hi + MARGIN * (hi - lo || 1)];
}

function ramp(u) {
  const s = Math.min(Math.max(u, 0), 1) * (RAMP.length - 1);
  const i = Math.min(Math.floor(s), RAMP.length - 2);
  const f = s - i;
  const c = RAMP[i].map((v, k) => Math.round(v + f * (RAMP[i + 1][k] - v)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

export class MapView {
  constructor(canvas) {
    this.canvas = canvas;
    this.points = null; // {x, y, index}
    this.colours = [];
    this.markers = {}; // name -> {x, y, colour, ring}
    this.layer = null; // the points, drawn once per size and colouring; markers go on top
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  setPoints(map) {
    this.points = map;
    this.xr = extent(map.x);
    this.yr = extent(map.y);
    this.layer = null;
    this.draw();
  }

  // colouring: {kind, names, values (per test image)}; returns the legend entries [[name, colour]].
  setColouring(colouring) {
    if (!this.points) return [];
    const { index } = this.points;
    this.layer = null;
    if (!colouring) {
      this.colours = index.map(() => "#555");
      this.draw();
      return [];
    }
    const v = colouring.values;
    if (colouring.kind === "discrete") {
      this.colours = index.map((i) => PALETTE[v[i] % PALETTE.length]);
      this.draw();
      return colouring.names.map((name, k) => [name, PALETTE[k % PALETTE.length]]);
    }
    let lo = Infinity, hi = -Infinity;
    for (const i of index) { lo = Math.min(lo, v[i]); hi = Math.max(hi, v[i]); }
    this.colours = index.map((i) => ramp((v[i] - lo) / (hi - lo || 1)));
    this.draw();
    return [[`${lo.toPrecision(3)} → ${hi.toPrecision(3)}`, null]];
  }

  // CSS pixels of the canvas -> map units, and back.
  toMap(px, py) {
    const r = this.canvas.getBoundingClientRect();
    return [this.xr[0] + (px / r.width) * (this.xr[1] - this.xr[0]),
      this.yr[1] - (py / r.height) * (this.yr[1] - this.yr[0])];
  }

  toPixels(x, y, width, height) {
    return [((x - this.xr[0]) / (this.xr[1] - this.xr[0])) * width,
      ((this.yr[1] - y) / (this.yr[1] - this.yr[0])) * height];
  }

  // The test point nearest to a canvas position, if it is within `radius` CSS pixels: its position in the lists.
  pointNear(px, py, radius = 6) {
    if (!this.points) return null;
    const r = this.canvas.getBoundingClientRect();
    let best = null, bestD = radius * radius;
    for (let k = 0; k < this.points.x.length; k++) {
      const [qx, qy] = this.toPixels(this.points.x[k], this.points.y[k], r.width, r.height);
      const d = (qx - px) ** 2 + (qy - py) ** 2;
      if (d <= bestD) { best = k; bestD = d; }
    }
    return best;
  }

  // shape: "cross" (the pinned code), "ring" (a real image) or "square" (a drawn code, labelled by its number)
  mark(name, position, colour, shape = "cross") {
    if (position) this.markers[name] = { x: position[0], y: position[1], colour, shape };
    else delete this.markers[name];
    this.draw();
  }

  drawPoints(width, height, ratio) {
    const layer = document.createElement("canvas");
    layer.width = Math.round(width * ratio);
    layer.height = Math.round(height * ratio);
    const g = layer.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    const { x, y } = this.points;
    const size = x.length > 5000 ? 2 : 3;
    for (let k = 0; k < x.length; k++) {
      const [px, py] = this.toPixels(x[k], y[k], width, height);
      g.fillStyle = this.colours[k] || "#555";
      g.fillRect(px - size / 2, py - size / 2, size, size);
    }
    return layer;
  }

  draw() {
    const c = this.canvas, ratio = window.devicePixelRatio || 1;
    const width = c.clientWidth, height = c.clientHeight;
    if (!width || !this.points) return;
    if (!this.layer || this.layer.width !== Math.round(width * ratio)) {
      this.layer = this.drawPoints(width, height, ratio);
      c.width = this.layer.width;
      c.height = this.layer.height;
    }
    const g = c.getContext("2d");
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, c.width, c.height);
    g.drawImage(this.layer, 0, 0);
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    for (const [name, m] of Object.entries(this.markers)) {
      const [px, py] = this.toPixels(m.x, m.y, width, height);
      g.strokeStyle = m.colour;
      g.lineWidth = 2;
      g.beginPath();
      if (m.shape === "ring") g.arc(px, py, 7, 0, 2 * Math.PI);
      else if (m.shape === "square") g.rect(px - 4, py - 4, 8, 8);
      else { g.moveTo(px - 8, py); g.lineTo(px + 8, py); g.moveTo(px, py - 8); g.lineTo(px, py + 8); }
      g.stroke();
      g.fillStyle = m.colour;
      g.font = "11px system-ui, sans-serif";
      g.fillText(m.shape === "square" ? name.replace(/\D+/, "") : name, px + 9, py - 6);
    }
  }
}
