// "Run in this browser": the page loads the model in this tab with bridgetower/web (served at /web/), from the
// server's own model files (/model/), and ranks captions here. The image never leaves the tab.
let loading; // one load per page; a failed one is forgotten so that Rank can try again

/** Whether /info says the tab can run this server's model. */
export const canRunHere = (info) => info?.browser?.available === true;

/**
 * Ranks `texts` for `image` (a File) in the tab, loading the model on first use. `key()` gives the API key for
 * /model/ requests; `onProgress(fraction, message)` reports the load.
 */
export async function rankHere(info, image, texts, key, onProgress) {
  loading ??= load(info, key, onProgress).catch((e) => {
    loading = undefined;
    throw e;
  });
  const { bt, model, processor } = await loading;
  return bt.rankTexts(model, processor, image, texts);
}

async function load(info, key, onProgress) {
  sendKeyTo("/model/", key);
  onProgress(0, "loading the web library…");
  const bt = await import("/web/bridgetower.js");
  const base = new URL("/model/", location.href).href;
  const { dtype, weights_bytes: total } = info.browser;
  const mb = (n) => (n / 1e6).toFixed(1);
  onProgress(0, `loading the model in this tab (${dtype}, ${mb(total)} MB)…`);
  const [model, processor] = await Promise.all([
    bt.BridgeTowerForImageAndTextRetrieval.fromPretrained(base, {
      dtype,
      onProgress: (p) => {
        const fraction = p.totalTensors ? p.tensors / p.totalTensors : 0;
        const bytes = p.file === "cache" ? "from the browser cache" : `${mb(p.downloaded)} / ${mb(p.total)} MB`;
        onProgress(fraction, `loading the model in this tab (${dtype}): ${bytes}, ${p.tensors} / ${p.totalTensors} tensors`);
      },
    }),
    bt.BridgeTowerProcessor.fromPretrained(base),
  ]);
  onProgress(1, "model loaded in this tab");
  return { bt, model, processor };
}

// bridgetower/web fetches with no headers of its own; when the server wants a key, it goes with this origin's
// /model/ requests only.
let patched = false;
function sendKeyTo(prefix, key) {
  if (patched) return;
  patched = true;
  const fetch0 = globalThis.fetch;
  globalThis.fetch = (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input), location.href);
    const k = key();
    if (!k || url.origin !== location.origin || !url.pathname.startsWith(prefix)) return fetch0(input, init);
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    headers.set("authorization", `Bearer ${k}`);
    return fetch0(input, { ...init, headers });
  };
}
