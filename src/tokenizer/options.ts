/** HF's padding / truncation rules (tokenization_utils_base.py, transformers 4.39.3), on plain id lists. */
import { TokenizerError } from "../errors.js";

export interface EncodeOptions {
  textPair?: string | string[];
  /** Default true: `<s> A </s>`, pairs `<s> A </s></s> B </s>`. */
  addSpecialTokens?: boolean;
  /** true == "longest"; padding is on the right with `<pad>`. */
  padding?: boolean | "longest" | "max_length" | "do_not_pad";
  truncation?: boolean | "longest_first" | "only_first" | "only_second" | "do_not_truncate";
  maxLength?: number;
  padToMultipleOf?: number;
}

export interface Encoding {
  inputIds: number[][];
  attentionMask: number[][];
}

type Padding = "longest" | "max_length" | "do_not_pad";
type Truncation = "longest_first" | "only_first" | "only_second" | "do_not_truncate";

export interface Plan {
  padding: Padding;
  truncation: Truncation;
  maxLength?: number;
  padToMultipleOf?: number;
}

const PADDINGS: readonly string[] = ["longest", "max_length", "do_not_pad"];
const TRUNCATIONS: readonly string[] = ["longest_first", "only_first", "only_second", "do_not_truncate"];

/** `_get_padding_truncation_strategies` for a tokenizer without model_max_length (BridgeTower's case). */
export function resolvePlan(o: EncodeOptions): Plan {
  const { maxLength, padToMultipleOf } = o;
  if (maxLength !== undefined && !(Number.isSafeInteger(maxLength) && maxLength >= 0)) {
    throw new TokenizerError("", `maxLength must be a non-negative integer, got ${maxLength}`);
  }
  if (padToMultipleOf !== undefined && !(Number.isSafeInteger(padToMultipleOf) && padToMultipleOf > 0)) {
    throw new TokenizerError("", `padToMultipleOf must be a positive integer, got ${padToMultipleOf}`);
  }
  const padOption = o.padding ?? false;
  let truncOption = o.truncation;
  // HF: a max_length with neither padding nor truncation asked for means longest_first truncation.
  if (maxLength !== undefined && padOption === false && truncOption === undefined) truncOption = "longest_first";

  let padding: Padding;
  if (padOption === false) padding = "do_not_pad";
  else if (padOption === true) padding = "longest";
  else if (PADDINGS.includes(padOption)) padding = padOption;
  else throw new TokenizerError("", `unknown padding ${JSON.stringify(padOption)}`);

  let truncation: Truncation;
  if (truncOption === undefined || truncOption === false) truncation = "do_not_truncate";
  else if (truncOption === true) truncation = "longest_first";
  else if (TRUNCATIONS.includes(truncOption)) truncation = truncOption;
  else throw new TokenizerError("", `unknown truncation ${JSON.stringify(truncOption)}`);

  // Without a max length (and no model_max_length) HF silently drops max_length padding and truncation.
  if (maxLength === undefined) {
    if (padding === "max_length") padding = "do_not_pad";
    truncation = "do_not_truncate";
  }
  if (
    truncation !== "do_not_truncate" &&
    padding !== "do_not_pad" &&
    padToMultipleOf !== undefined &&
    maxLength !== undefined &&
    maxLength % padToMultipleOf !== 0
  ) {
    throw new TokenizerError("", `truncation length (${maxLength}) is not a multiple of padToMultipleOf (${padToMultipleOf})`);
  }
  return { padding, truncation, maxLength, padToMultipleOf };
}

/**
 * `truncate_sequences` (right side). Where HF only logs an error and returns the sequence untruncated
 * (too few tokens to remove from the chosen sequence), this throws instead.
 */
export function truncate(ids: number[], pair: number[] | undefined, numSpecial: number, plan: Plan): [number[], number[] | undefined] {
  const total = ids.length + (pair?.length ?? 0) + numSpecial;
  // `max_length and ...`: HF treats max_length 0 as no limit.
  if (plan.truncation === "do_not_truncate" || !plan.maxLength || total <= plan.maxLength) return [ids, pair];
  const remove = total - plan.maxLength;
  const tooShort = (which: string, length: number) =>
    new TokenizerError("", `cannot truncate to maxLength ${plan.maxLength}: need to remove ${remove} tokens but the ${which} sequence has ${length}`);

  if (plan.truncation === "only_first" || (plan.truncation === "longest_first" && pair === undefined)) {
    if (ids.length <= remove) throw tooShort("first", ids.length);
    return [ids.slice(0, ids.length - remove), pair];
  }
  if (plan.truncation === "longest_first" && pair !== undefined) {
    // Closed form of "remove one token at a time from the longer sequence (the second one on ties)".
    const first = Math.min(Math.abs(pair.length - ids.length), remove);
    const second = remove - first;
    const half = Math.floor(second / 2);
    const [idsCut, pairCut] = ids.length > pair.length ? [first + half, second - half] : [half, first + second - half];
    return [ids.slice(0, Math.max(0, ids.length - idsCut)), pair.slice(0, Math.max(0, pair.length - pairCut))];
  }
  if (plan.truncation === "only_second" && pair !== undefined) {
    if (pair.length <= remove) throw tooShort("second", pair.length);
    return [ids, pair.slice(0, pair.length - remove)];
  }
  return [ids, pair]; // only_second on a single sequence: HF leaves it alone
}

/** `pad` / `_pad`: right padding to the longest row or to maxLength, rounded up to padToMultipleOf. */
export function pad(rows: number[][], plan: Plan, padId: number): Encoding {
  let target: number | undefined;
  if (plan.padding === "longest") target = rows.reduce((longest, r) => Math.max(longest, r.length), 0);
  else if (plan.padding === "max_length") target = plan.maxLength;
  const m = plan.padToMultipleOf;
  if (target !== undefined && m !== undefined && target % m !== 0) target = (Math.floor(target / m) + 1) * m;

  const inputIds: number[][] = [];
  const attentionMask: number[][] = [];
  for (const row of rows) {
    const extra = plan.padding === "do_not_pad" || target === undefined ? 0 : Math.max(0, target - row.length);
    inputIds.push([...row, ...new Array<number>(extra).fill(padId)]);
    attentionMask.push([...new Array<number>(row.length).fill(1), ...new Array<number>(extra).fill(0)]);
  }
  return { inputIds, attentionMask };
}
