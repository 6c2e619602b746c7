// The explorer page: a map to move through, the image under the pointer, a pinned image with attribute and
// axis sliders, interpolation between two real images, and uploads. All data comes from the JSON API (api.js).
import { get, latest, post, upload } from "./api.js";
import { initDescribe, showDescription } from "./describe.js";
import { MapView } from "./map.js";

const $ = (id) => document.getElementById(id);
const SLIDER_RANGE = 3;
const MARKS = { pinned: "#d62728", upload: "#2f6fde", A: "#111", B: "#111" };

const state = {
  info: null,
  method: null, // the map shown
  map: null, // {method, index, x, y, inverse}
  colouring: null,
  pinned: null, // {z, ref, url, caption}
  ends: { a: null, b: null }, // {ref, url, caption, positions}
  path: null, // the interpolation answer
  attributes: [],
  positions: {}, // marker name -> {method: [x, y]}
};
const view = new MapView($("map"));

function say(message) {
  $("status").textContent = message || "";
}

function fail(error) {
  say(error.message);
}

// -- map ---------------------------------------------------------------------------------------------------

async function showMap(method) {
  state.method = method;
  state.map = await get(`/api/maps/${method}`);
  view.setPoints(state.map);
  legend(view.setColouring(state.colouring));
  $("map-inverse").textContent = `Positions become codes by ${state.map.inverse}.`;
  for (const [name, positions] of Object.entries(state.positions)) {
    view.mark(name, positions?.[method], MARKS[name] || "#111", shape(name));
  }
}

async function colourBy(name) {
  state.colouring = name ? await get(`/api/colourings/${encodeURIComponent(name)}`) : null;
  legend(view.setColouring(state.colouring));
}

function legend(entries) {
  const box = $("legend");
  box.replaceChildren();
  for (const [name, colour] of entries.slice(0, 40)) {
    const item = document.createElement("span");
    item.textContent = name;
    if (colour) item.style.setProperty("--swatch", colour);
    else item.classList.add("continuous");
    box.append(item);
  }
}

function place(name, positions, colour) {
  state.positions[name] = positions;
  if (colour) MARKS[name] = colour;
  view.mark(name, positions?.[state.method], MARKS[name] || "#111", shape(name));
}

const shape = (name) => (name === "pinned" ? "cross" : name.startsWith("drawn") ? "square" : "ring");

function pointer(event) {
  const r = $("map").getBoundingClientRect();
  return [event.clientX - r.left, event.clientY - r.top];
}

const decodeAt = latest(
  ([x, y]) => post(`/api/maps/${state.method}/decode`, { x, y }),
  (result, [x, y]) => {
    $("decoded").src = result.image;
    $("decoded-where").textContent = `${state.method} (${x.toFixed(2)}, ${y.toFixed(2)})`;
    neighbours($("neighbours"), result.neighbours);
  },
  fail,
);

$("map").addEventListener("pointermove", (event) => {
  if (!state.map) return;
  decodeAt(view.toMap(...pointer(event)));
});

$("map").addEventListener("click", async (event) => {
  if (!state.map) return;
  say("");
  const [px, py] = pointer(event);
  const k = view.pointNear(px, py);
  try {
    if (k !== null) {
      pinLocated(await post("/api/locate", { split: "test", index: state.map.index[k] }));
    } else {
      const [x, y] = view.toMap(px, py);
      const result = await post(`/api/maps/${state.method}/decode`, { x, y, neighbours: 0 });
      pin({ z: result.z, image: result.image, ref: null, caption: `decoded at (${x.toFixed(2)}, ${y.toFixed(2)})` },
        { [state.method]: [x, y] });
    }
  } catch (error) {
    fail(error);
  }
});

function neighbours(box, list) {
  box.replaceChildren(...list.map((n) => {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.className = "pixelated";
    img.src = n.url;
    img.alt = `training image ${n.index}`;
    const caption = document.createElement("figcaption");
    caption.textContent = `${n.label ?? "#" + n.index} · ${n.distance.toFixed(2)}`;
    figure.append(img, caption);
    return figure;
  }));
}

// -- pinned image and its sliders --------------------------------------------------------------------------

function describe(ref, extra) {
  return `${ref.split} ${ref.index}${extra ? " · " + extra : ""}`;
}

function pinLocated(located, caption) {
  const label = located.ref.split === "test" && state.colouring?.kind === "discrete"
    ? state.colouring.names[state.colouring.values[located.ref.index]] : null;
  pin({ z: located.z, image: located.reconstruction, ref: located.ref, url: located.url,
    caption: caption || describe(located.ref, label), positions: located.positions }, located.positions);
}

function pin(item, positions) {
  state.pinned = item;
  $("pinned").src = item.image;
  $("pinned-caption").textContent = item.ref ? `reconstruction of ${item.caption}` : item.caption;
  $("pinned-real-figure").hidden = !item.url;
  if (item.url) $("pinned-real").src = item.url;
  $("use-a").disabled = $("use-b").disabled = !item.ref;
  $("reset-sliders").disabled = false;
  if (item.ref && state.info.has_vocabulary) showDescription($("pinned-description"), item.ref);
  else $("pinned-description").textContent = "";
  resetSliders();
  place("pinned", positions);
}

function slider(box, name, onInput) {
  const label = document.createElement("label");
  label.textContent = name;
  label.title = name;
  const input = document.createElement("input");
  Object.assign(input, { type: "range", min: -SLIDER_RANGE, max: SLIDER_RANGE, step: 0.1, value: 0 });
  input.setAttribute("aria-label", name);
  input.dataset.name = name;
  const output = document.createElement("output");
  output.textContent = "0.0";
  input.addEventListener("input", () => {
    output.textContent = Number(input.value).toFixed(1);
    onInput();
  });
  box.append(label, input, output);
}

function sliderValues(box) {
  return [...box.querySelectorAll("input")].map((input) => [input.dataset.name, Number(input.value)]);
}

function resetSliders() {
  for (const input of document.querySelectorAll(".sliders input")) input.value = 0;
  for (const output of document.querySelectorAll(".sliders output")) output.textContent = "0.0";
}

const applyEdit = latest(
  (body) => post("/api/edit", body),
  (result) => { $("pinned").src = result.image; },
  fail,
);

function edited() {
  if (!state.pinned) return;
  const attributes = Object.fromEntries(sliderValues($("attribute-sliders")).filter(([, v]) => v !== 0));
  const axes = sliderValues($("axis-sliders")).map(([, v]) => v);
  applyEdit({ z: state.pinned.z, attributes, axes });
}

async function loadAttributes() {
  const found = await get("/api/attributes");
  $("attributes-note").textContent = found.attributes.length
    ? `${found.attributes.length} directions (strength in stds of the training codes' projections). ${found.note}.`
    : found.note + ".";
  for (const a of found.attributes) slider($("attribute-sliders"), a.name, edited);
  for (let i = 0; i < found.latent_dim; i++) slider($("axis-sliders"), `z${i}`, edited);
}

$("reset-sliders").addEventListener("click", () => {
  resetSliders();
  edited();
});

// -- interpolation -----------------------------------------------------------------------------------------

function useAs(end) {
  const p = state.pinned;
  if (!p || !p.ref) return;
  state.ends[end] = { ref: p.ref, url: p.url, caption: p.caption };
  $(`end-${end}`).src = p.url;
  $(`end-${end}-caption`).textContent = `${end.toUpperCase()}: ${p.caption}`;
  place(end.toUpperCase(), p.positions);
  if (state.ends.a && state.ends.b) interpolate();
}

$("use-a").addEventListener("click", () => useAs("a"));
$("use-b").addEventListener("click", () => useAs("b"));

async function interpolate() {
  say("");
  try {
    state.path = await post("/api/interpolate", { a: state.ends.a.ref, b: state.ends.b.ref, steps: 12 });
  } catch (error) {
    fail(error);
    return;
  }
  const slider = $("t-slider");
  slider.max = state.path.t.length - 1;
  slider.disabled = false;
  $("score-note").textContent = "Scores per frame: " + Object.values(state.path.scores).join("; ") + ".";
  showFrame();
}

function scoreText(path, k) {
  const parts = [];
  const number = (v, digits) => (v === null ? "–" : v.toFixed(digits));
  parts.push(`ELBO ${number(path.elbo[k], 1)}`);
  parts.push(`RMS ${number(path.nearest_distance[k], 3)}`);
  if (path.classifier_confidence) parts.push(`conf ${number(path.classifier_confidence[k], 2)}`);
  return parts.join(" · ");
}

function showFrame() {
  if (!state.path) return;
  const k = Number($("t-slider").value);
  const name = $("latent-path").value;
  const pixel = state.path.paths.pixel, path = state.path.paths[name];
  $("frame-pixel").src = pixel.frames[k];
  $("frame-latent").src = path.frames[k];
  $("latent-path-name").textContent = `latent ${name}, t = ${state.path.t[k].toFixed(2)}`;
  $("score-pixel").textContent = scoreText(pixel, k);
  $("score-latent").textContent = scoreText(path, k);
}

$("t-slider").addEventListener("input", showFrame);
$("latent-path").addEventListener("change", showFrame);

// -- upload ------------------------------------------------------------------------------------------------

async function send(file) {
  if (!file) return;
  say(`reading ${file.name}…`);
  try {
    const located = await upload(file);
    say("");
    $("upload-original").src = located.url;
    $("upload-reconstruction").src = located.reconstruction;
    neighbours($("upload-neighbours"), located.neighbours);
    place("upload", located.positions);
    const [x, y] = located.positions[state.method];
    $("upload-where").textContent = `lands at (${x.toFixed(3)}, ${y.toFixed(3)}) on the ${state.method} map (ring)`;
    showVerdict($("upload-verdict"), located);
    if (state.info.has_vocabulary) showDescription($("upload-description"), located.ref);
    pinLocated(located, `upload ${located.ref.index} (${file.name})`);
  } catch (error) {
    fail(error);
  }
}

// The same verdict as `latentspace locate`, or why there is none yet.
function showVerdict(element, located) {
  const v = located.verdict;
  element.classList.remove("on", "off");
  if (!v) {
    element.textContent = located.verdict_note;
    return;
  }
  element.classList.add(v.on_manifold ? "on" : "off");
  element.textContent = `${v.verdict}: ${v.score} score ${v.value.toFixed(2)}, above ${v.percentile.toFixed(1)}% of `
    + `the test images (off beyond their ${v.calibration_percentile}th percentile, ${v.threshold.toFixed(2)})`;
}

$("file").addEventListener("change", () => send($("file").files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  send(event.dataTransfer.files[0]);
});

// -- start -------------------------------------------------------------------------------------------------

async function start() {
  const info = (state.info = await get("/api/info"));
  const [c, h, w] = info.image_shape;
  $("run-info").textContent = `${info.run}: ${info.dataset}, ${w}x${h}x${c} images, ${info.latent_dim}-d latent, `
    + `${info.n_train.toLocaleString()} train / ${info.n_test.toLocaleString()} test`;
  $("map-method").replaceChildren(...info.maps.map((m) => new Option(m, m, m === info.default_map, m === info.default_map)));
  const names = info.colourings.map((k) => k.name);
  $("colour-by").replaceChildren(new Option("nothing", ""),
    ...names.map((n) => new Option(n, n, n === info.default_colouring, n === info.default_colouring)));
  $("map-method").addEventListener("change", () => showMap($("map-method").value).catch(fail));
  $("colour-by").addEventListener("change", () => colourBy($("colour-by").value).catch(fail));
  await colourBy(info.default_colouring);
  await showMap(info.default_map);
  await loadAttributes();
  if (info.has_vocabulary) await initDescribe(place, say);
  else $("draw-panel").hidden = true;
  document.body.dataset.ready = "true";
}

start().catch(fail);
