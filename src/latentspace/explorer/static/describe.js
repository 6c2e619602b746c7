// The description panel: images in words (read off their codes) and images drawn from words. The words are
// the run's own vocabulary (GET /api/vocabulary); drawn images land on the map as small squares.
import { get, post } from "./api.js";

const $ = (id) => document.getElementById(id);
const DRAWN_COLOUR = "#e07b00";
const PANEL_IMAGES = 8;

// Shows an image's description in `element`: the words, then what the codes cannot tell.
export async function showDescription(element, ref) {
  element.textContent = "reading the code…";
  try {
    const found = await post("/api/describe", ref);
    const tail = found.left_out.length ? ` (not read above chance: ${found.left_out.join(", ")})` : "";
    element.textContent = found.text + tail;
  } catch (error) {
    element.textContent = error.message;
  }
}

// Wires the description box; place(name, positions) marks a point on the map, say(message) shows status.
export async function initDescribe(place, say) {
  const vocabulary = await get("/api/vocabulary");
  const terms = $("draw-terms");
  terms.replaceChildren(...vocabulary.terms.map((t) => new Option(t)));
  $("draw-note").textContent = vocabulary.terms.length
    ? `Terms: ${vocabulary.terms.slice(0, 12).join(", ")}${vocabulary.terms.length > 12 ? ", …" : ""}.`
      + " Terms left out are drawn from their distribution in the data."
    : vocabulary.note + ".";
  $("draw-form").hidden = !vocabulary.terms.length;
  $("draw-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    await draw(place, say);
  });
}

async function draw(place, say) {
  const description = $("draw-description").value.trim();
  if (!description) return;
  const button = $("draw-button");
  button.disabled = true;
  say("drawing… (the first draw trains the run's conditional prior once, about a minute)");
  try {
    const drawn = await post("/api/draw", { description, n: PANEL_IMAGES, guidance: Number($("draw-guidance").value),
      method: $("draw-method").value });
    say("");
    $("draw-caption").textContent = `${drawn.images.length} images of ${drawn.terms.join(", ")} `
      + `(${drawn.method}, guidance ${drawn.guidance}); squares on the map`;
    $("drawn").replaceChildren(...drawn.images.map((d, i) => figure(d, i)));
    for (let i = 0; i < PANEL_IMAGES; i++) place(`drawn${i}`, drawn.images[i]?.positions, DRAWN_COLOUR);
  } catch (error) {
    say(error.message);
  } finally {
    button.disabled = false;
  }
}

function figure(drawn, i) {
  const box = document.createElement("figure");
  const img = document.createElement("img");
  img.className = "pixelated";
  img.src = drawn.image;
  img.alt = `drawn image ${i + 1}`;
  img.title = `code: ${drawn.z.map((v) => v.toFixed(2)).join(", ")}`;
  box.append(img);
  return box;
}
