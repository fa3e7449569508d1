/**
 * What a load builds, apart from where weights and sessions come from: the heads asked for and found, the parts
 * (graphs) they need, and the checkpoint's keys checked against them. Shared by Node's engine.ts and the page's
 * src/web/engine.ts.
 */
import { InputError, UnsupportedCheckpointError } from "../errors.js";
import type { Graph } from "../onnx/graph.js";
import { contrastiveUnsupportedReason, type BridgeTowerConfig } from "./config.js";
import type { ParameterStore } from "./params.js";
import {
  buildContrastiveImageHead, buildContrastiveTextHead, buildHeadPart, buildTextPart, buildTrunkPart, buildVisionPart, hasTrunk,
  parameterShapes, type Head,
} from "./parts.js";

export type TaskHead = Exclude<Head, "none">;
export type Part = "text" | "vision" | "trunk" | `head:${Head}` | "itc_text" | "itc_image";

export const TASK_HEADS: TaskHead[] = ["itm", "mlm", "itc"];
export const HEAD_KEYS: Record<TaskHead, string[]> = {
  itm: ["itm_score."],
  mlm: ["mlm_score."],
  itc: ["itc_text_head.", "itc_image_head.", "itc_cross_modal_head.", "logit_scale"],
};
const HEAD_NAMES: Record<TaskHead, string> = {
  itm: "image-text matching (ITM) head `itm_score`, found in the *-itm-mlm checkpoints",
  mlm: "masked-language-modeling (MLM) head `mlm_score`, found in the *-itm-mlm checkpoints",
  itc: "contrastive (ITC) heads `itc_*_head` and `logit_scale`, found in BridgeTower/bridgetower-large-itm-mlm-itc",
};
/** Checkpoint keys that exist upstream but no forward pass reads. */
const KNOWN_UNUSED = [
  /^bridgetower\.text_model\.pooler\./,
  /\.ln_separate\./,
  /link_tower\.(LayerNorm|beta|scaled_factor)/,
  // vision blocks beyond the text depth (they exist but never run, as upstream)
  /^bridgetower\.vision_model\.visual\.transformer\.resblocks\.\d+\.(attn\.(in_proj_weight|in_proj_bias|out_proj\.(weight|bias))|ln_[12]\.(weight|bias)|mlp\.c_(fc|proj)\.(weight|bias))$/,
];

/** The checks made on the config before any weight is looked for or downloaded. */
export function checkRequest(idOrDir: string, config: BridgeTowerConfig, heads: Head[] | "available", dtype: unknown): void {
  if (dtype !== undefined && dtype !== "fp32" && dtype !== "int8")
    throw new InputError("dtype", `must be "fp32" or "int8", got "${dtype}"`);
  if (heads !== "available") checkHeadNames(heads);
  if (heads !== "available" && heads.includes("itc")) {
    const why = contrastiveUnsupportedReason(config);
    if (why) throw new UnsupportedCheckpointError(idOrDir, `cannot build BridgeTowerForContrastiveLearning: ${why}`);
  }
}

export function checkHeadNames(heads: Head[]): void {
  if (!Array.isArray(heads) || heads.length === 0) throw new InputError("heads", `must name at least one of ${TASK_HEADS.join(", ")} (or be "available")`);
  for (const h of heads)
    if (h !== "none" && !TASK_HEADS.includes(h as TaskHead)) throw new InputError("heads", `unknown head "${h}": expected ${TASK_HEADS.join(", ")}`);
}

/** The task heads whose parameters are all in the checkpoint (ITC only where the config can build it). */
export function availableHeads(names: Iterable<string>, config: BridgeTowerConfig, dir: string): Head[] {
  const keys = [...names];
  const has = (h: TaskHead) => HEAD_KEYS[h].every((p) => keys.some((k) => k.startsWith(p)));
  const heads = TASK_HEADS.filter((h) => has(h) && (h !== "itc" || !contrastiveUnsupportedReason(config)));
  if (heads.length === 0) throw new UnsupportedCheckpointError(dir, `this checkpoint has none of the ${TASK_HEADS.join(", ")} heads`);
  return heads;
}

/** The parts every call needs, created at load. */
export function startParts(config: BridgeTowerConfig, heads: Head[]): Part[] {
  const parts: Part[] = ["text", "vision"];
  if (hasTrunk(config)) parts.push("trunk");
  for (const h of heads) parts.push(`head:${h}`);
  if (heads.includes("itc")) parts.push("itc_text", "itc_image");
  return parts;
}

export function buildPart(store: ParameterStore, config: BridgeTowerConfig, part: Part, hidden: boolean): Graph {
  if (part === "text") return buildTextPart(store, config, hidden);
  if (part === "vision") return buildVisionPart(store, config, hidden);
  if (part === "trunk") return buildTrunkPart(store, config, hidden);
  if (part === "itc_text") return buildContrastiveTextHead(store, config);
  if (part === "itc_image") return buildContrastiveImageHead(store, config);
  return buildHeadPart(store, config, part.slice("head:".length) as Head, hidden);
}

/** What `checkWeights` reads of a store, once the parts are built. */
export interface CheckedStore {
  readonly missing: string[];
  readonly entries: { keys(): Iterable<string> };
  checkMissing(what: string): void;
}

/** Refuses a missing head or parameter; warns about checkpoint keys BridgeTower does not have at all. */
export function checkWeights(store: CheckedStore, config: BridgeTowerConfig, heads: Head[], path: string, who: string, warn: (m: string) => void): void {
  const missing = store.missing;
  for (const head of heads) {
    if (head === "none") continue;
    if (missing.length > 0 && missing.some((m) => HEAD_KEYS[head].some((p) => m.startsWith(p))))
      throw new UnsupportedCheckpointError(path, `this checkpoint has no ${HEAD_NAMES[head]}`);
  }
  store.checkMissing(who);
  // Unexpected = not a parameter of BridgeTower at all (as transformers reports them); other heads' keys and
  // parameters upstream holds but never reads (text pooler, extra vision blocks) are expected.
  const known = parameterShapes(config, ["itm", "mlm", ...(contrastiveUnsupportedReason(config) ? [] : ["itc" as const])]);
  const otherHeads = Object.values(HEAD_KEYS).flat();
  const unexpected = [...store.entries.keys()].filter(
    (n) => !known.has(n) && !KNOWN_UNUSED.some((r) => r.test(n)) && !otherHeads.some((p) => n.startsWith(p)),
  );
  if (unexpected.length > 0)
    warn(`${path}: ${unexpected.length} checkpoint tensor(s) not used by ${who}: ${unexpected.slice(0, 10).join(", ")}${unexpected.length > 10 ? ", …" : ""}`);
}

/** The error a head class gives for a head its model was not loaded with. */
export function requireHead(path: string, heads: Head[], head: Head): void {
  if (head === "none" || heads.includes(head)) return;
  throw new UnsupportedCheckpointError(path, `head "${head}" was not loaded with this model (loaded: ${heads.join(", ")}): name it in \`heads\` when loading`);
}
