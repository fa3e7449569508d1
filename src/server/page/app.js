// The page's script: reads the chosen image as a data: URL and calls the server's own API (/v1/itm, /v1/fill-mask,
// and /v1/search when the server has a collection), or ranks in this tab with "run in this browser" (in-browser.js).
import { canRunHere, rankHere } from "/in-browser.js";

const $ = (id) => document.getElementById(id);
const images = { rank: null, fill: null };
const files = { rank: null, fill: null };
let info = null;

function status(message, isError = false) {
  $("status").textContent = message;
  $("status").classList.toggle("error", isError);
}

function headers() {
  const h = { "content-type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

async function api(path, body) {
  const res = await fetch(path, body === undefined ? { headers: headers() } : { method: "POST", headers: headers(), body: JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) $("key-field").hidden = false;
  if (!res.ok) throw new Error(data.error?.message ?? `HTTP ${res.status}`);
  return data;
}

// The API key field appears only when the server asks for one.
async function showInfo() {
  try {
    info = await api("/info");
    const rows = info.collection ? `; collection: ${info.collection.rows} rows` : "";
    $("model").textContent = `${info.model} (${info.dtype}; heads: ${info.heads.join(", ")}${rows})`;
    $("tab-search").hidden = !info.collection;
    $("in-browser-field").hidden = !canRunHere(info);
  } catch (e) {
    if ($("key-field").hidden) status(e.message, true);
  }
}

function readImage(view, file) {
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    images[view] = reader.result;
    files[view] = file;
    const preview = $(`${view}-preview`);
    preview.src = reader.result;
    preview.hidden = false;
  };
  reader.onerror = () => status(`cannot read ${file.name}`, true);
  reader.readAsDataURL(file);
}

function setUpImage(view) {
  const input = $(`${view}-image`);
  input.addEventListener("change", () => readImage(view, input.files[0]));
  const drop = $(`${view}-drop`);
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    readImage(view, e.dataTransfer.files[0]);
  });
}

/** One result row: a label, a bar as wide as the score, the score to 4 decimals (the full number in data-score). */
function row(label, score) {
  const li = document.createElement("li");
  li.className = "row";
  li.dataset.score = String(score);
  const text = document.createElement("span");
  text.className = "label";
  text.textContent = label;
  const bar = document.createElement("span");
  bar.className = "bar";
  const fill = document.createElement("span");
  fill.style.width = `${Math.max(0, Math.min(1, score)) * 100}%`;
  bar.append(fill);
  const value = document.createElement("span");
  value.className = "score";
  value.textContent = score.toFixed(4);
  li.append(text, bar, value);
  return li;
}

async function rank() {
  const texts = $("captions").value.split("\n").map((t) => t.trim()).filter((t) => t);
  if (!images.rank) return status("choose an image first", true);
  if (texts.length === 0) return status("type at least one caption", true);
  const here = $("in-browser").checked;
  status("ranking…");
  $("rank").disabled = true;
  try {
    const results = here ? await rankInTab(texts) : (await api("/v1/itm", { image: images.rank, texts })).results;
    $("rank-results").replaceChildren(...results.map((r) => row(r.text, r.score)));
    status(`${results.length} caption(s) ranked by match probability${here ? " in this browser" : ""}`);
  } catch (e) {
    status(e.message, true);
  } finally {
    $("rank").disabled = false;
    $("load-progress").hidden = true;
  }
}

/** The File itself goes to the model in the tab: nothing is sent. */
function rankInTab(texts) {
  const progress = $("load-progress");
  return rankHere(info, files.rank, texts, () => $("api-key").value.trim(), (fraction, message) => {
    progress.hidden = fraction >= 1;
    progress.value = fraction;
    status(message);
  });
}

async function fill() {
  if (!images.fill) return status("choose an image first", true);
  status("filling…");
  $("fill").disabled = true;
  try {
    const out = await api("/v1/fill-mask", { image: images.fill, text: $("mask-text").value, top_k: Number($("top-k").value) || 5 });
    $("fill-sequence").textContent = out.sequence;
    $("fill-results").replaceChildren(...out.masks.flatMap((m, k) => m.map((c) => row(out.masks.length > 1 ? `${k + 1}: ${c.token}` : c.token, c.score))));
    status(`${out.masks.length} mask(s) filled`);
  } catch (e) {
    status(e.message, true);
  } finally {
    $("fill").disabled = false;
  }
}

// Thumbnails are fetched (not <img src>) so that the API key goes with them; blob: URLs are freed on the next search.
let thumbs = [];
async function thumbnail(id) {
  const img = document.createElement("img");
  img.className = "thumb";
  img.alt = "";
  const res = await fetch(`/v1/items/${encodeURIComponent(id)}/image`, { headers: headers() });
  if (res.ok) {
    img.src = URL.createObjectURL(await res.blob());
    thumbs.push(img.src);
  }
  return img;
}

const clock = (ms) => `${String(Math.floor(ms / 60000)).padStart(2, "0")}:${String(Math.floor(ms / 1000) % 60).padStart(2, "0")}`;

/** One hit: thumbnail, caption (or file name), the time in a video, the cosine score to 4 decimals. */
async function hit(r) {
  const li = document.createElement("li");
  li.className = "hit";
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = r.text ?? r.source.split("/").pop();
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = r.time_ms === undefined ? "" : clock(r.time_ms);
  const value = document.createElement("span");
  value.className = "score";
  value.textContent = r.score.toFixed(4);
  li.append(await thumbnail(r.id), label, time, value);
  return li;
}

async function search() {
  const text = $("search-text").value.trim();
  if (!text) return status("type a question first", true);
  status("searching…");
  $("search").disabled = true;
  try {
    const { results } = await api("/v1/search", { query: text, top_k: Number($("search-k").value) || 8 });
    for (const u of thumbs.splice(0)) URL.revokeObjectURL(u);
    $("search-results").replaceChildren(...(await Promise.all(results.map(hit))));
    status(`${results.length} result(s), best first by cosine similarity`);
  } catch (e) {
    status(e.message, true);
  } finally {
    $("search").disabled = false;
  }
}

function show(view) {
  for (const v of ["rank", "fill", "search"]) {
    $(`view-${v}`).hidden = v !== view;
    $(`tab-${v}`).setAttribute("aria-selected", String(v === view));
  }
  status("");
}

setUpImage("rank");
setUpImage("fill");
$("rank").addEventListener("click", rank);
$("fill").addEventListener("click", fill);
$("search").addEventListener("click", search);
// A key typed after a 401 may reveal the Search tab (/info needs the key too).
$("api-key").addEventListener("change", showInfo);
$("search-text").addEventListener("keydown", (e) => e.key === "Enter" && search());
$("tab-rank").addEventListener("click", () => show("rank"));
$("tab-fill").addEventListener("click", () => show("fill"));
$("tab-search").addEventListener("click", () => show("search"));
showInfo();
