/** The user-level commands: itm, fill-mask, embed. Formatting only; the work is in src/tasks. */
import { InputError } from "../errors.js";
import { BridgeTowerForContrastiveLearning, BridgeTowerForImageAndTextRetrieval, BridgeTowerForMaskedLM } from "../model/bridgetower.js";
import { BridgeTowerProcessor } from "../processor.js";
import { embed, fillMask, rankTexts } from "../tasks/index.js";
import { SORT_BY, type SortBy } from "../tasks/rank.js";
import { parse, type CommandSpec, type ParsedValues } from "./args.js";
import { fmt, list, MODEL_OPTIONS, modelFolder, positiveInt, status } from "./common.js";

/** Resolves --model once, loads the processor and the model side by side, runs `job`, then frees the model. */
async function withModel<M extends { dispose(): Promise<void> }>(
  o: ParsedValues,
  load: (dir: string, options: Awaited<ReturnType<typeof modelFolder>>) => Promise<M>,
  job: (model: M, processor: BridgeTowerProcessor) => Promise<void>,
): Promise<void> {
  const m = await modelFolder(o);
  // Loaded together; when one fails the other is still awaited, so a loaded model is disposed (not left holding
  // its weight file open until garbage collection, which Node reports on stderr).
  const [processor, model] = await Promise.allSettled([BridgeTowerProcessor.fromPretrained(m.dir), load(m.dir, m)]);
  try {
    if (processor.status === "rejected") throw processor.reason;
    if (model.status === "rejected") throw model.reason;
    await job(model.value, processor.value);
  } finally {
    if (model.status === "fulfilled") await model.value.dispose();
  }
}

export const itmSpec: CommandSpec = {
  name: "itm",
  usage: "bridgetower itm IMAGE TEXT [TEXT...] [--sort probability|logit] [--model ID|DIR] [--json]",
  summary: "Rank texts by how well they match an image (image-text matching).",
  options: {
    ...MODEL_OPTIONS,
    sort: { type: "string", help: "probability (default: softmax of the two ITM logits) or logit (the match logit, logits[0,1] as on the model card)" },
  },
  positionals: true,
};

export async function itm(argv: string[]): Promise<void> {
  const { values: o, positionals } = parse(itmSpec, argv);
  const [image, ...texts] = positionals;
  if (!image || texts.length === 0) throw new InputError("itm", "needs an IMAGE and at least one TEXT (see --help)");
  const sortBy = (o.sort ?? "probability") as SortBy;
  // Checked here too, so a bad value fails before the model is resolved and loaded.
  if (!SORT_BY.includes(sortBy)) throw new InputError("--sort", `must be ${SORT_BY.join(" or ")}, got "${o.sort}"`);
  await withModel(o, (dir, m) => BridgeTowerForImageAndTextRetrieval.fromPretrained(dir, m), async (model, processor) => {
    status(`bridgetower: scoring ${texts.length} text(s)`);
    const ranked = await rankTexts(model, processor, image, texts, { sortBy });
    if (o.json) console.log(JSON.stringify(ranked.map((r) => ({ text: r.text, score: r.score, logits: r.logits }))));
    else {
      // score: match probability; logit: the match logit logits[1] (the model card's score).
      console.log(`${"rank".padEnd(5)} ${"score".padEnd(6)} ${"logit".padStart(8)}  text`);
      ranked.forEach((r, i) => console.log(`${String(i + 1).padEnd(5)} ${fmt(r.score)} ${fmt(r.logits[1]).padStart(8)}  ${r.text}`));
    }
  });
}

export const fillMaskSpec: CommandSpec = {
  name: "fill-mask",
  usage: 'bridgetower fill-mask IMAGE "a <mask> looking out of the window" [--top-k 5] [--all-positions] [--model ID|DIR] [--json]',
  summary: "Fill each <mask> of a caption given an image (masked language modeling).",
  options: {
    ...MODEL_OPTIONS,
    "top-k": { type: "string", help: "candidates per mask (default 5)" },
    "all-positions": { type: "boolean", help: "print only the model card's output: the best token at every position, <s> and </s> included, decoded" },
  },
  positionals: true,
};

export async function fillMaskCommand(argv: string[]): Promise<void> {
  const { values: o, positionals } = parse(fillMaskSpec, argv);
  if (positionals.length !== 2) throw new InputError("fill-mask", "needs an IMAGE and one TEXT containing <mask> (see --help)");
  const [image, text] = positionals;
  const topK = positiveInt(o["top-k"], "--top-k") ?? 5;
  await withModel(o, (dir, m) => BridgeTowerForMaskedLM.fromPretrained(dir, m), async (model, processor) => {
    const r = await fillMask(model, processor, image, text, topK);
    if (o.json)
      console.log(JSON.stringify({
        sequence: r.sequence,
        masks: r.masks.map((c) => c.map((x) => ({ token: x.token, token_id: x.tokenId, score: x.score }))),
        decoded: r.decoded,
      }));
    else if (o["all-positions"]) console.log(r.decoded);
    else {
      console.log(r.sequence);
      r.masks.forEach((cands, k) => {
        console.log(`mask ${k + 1}:`);
        for (const c of cands) console.log(`  ${c.score < 0.01 ? c.score.toExponential(3) : fmt(c.score)}  ${JSON.stringify(c.token)}`);
      });
    }
  });
}

export const embedSpec: CommandSpec = {
  name: "embed",
  usage: "bridgetower embed [--image F]... [--text T]... [--model ID|DIR] [--json]",
  summary: "Contrastive embeddings of texts and images, and their cosine similarities (contrastive checkpoints).",
  options: {
    ...MODEL_OPTIONS,
    image: { type: "string", multiple: true, help: "image file" },
    text: { type: "string", multiple: true, help: "text" },
  },
};

export async function embedCommand(argv: string[]): Promise<void> {
  const { values: o } = parse(embedSpec, argv);
  const images = list(o.image);
  const texts = list(o.text);
  if (images.length + texts.length === 0) throw new InputError("embed", "give at least one --image or --text (see --help)");
  await withModel(o, (dir, m) => BridgeTowerForContrastiveLearning.fromPretrained(dir, m), async (model, processor) => {
    const r = await embed(model, processor, { texts, images });
    if (o.json)
      console.log(JSON.stringify({ text_embeds: r.textEmbeds, image_embeds: r.imageEmbeds, cross_embeds: r.crossEmbeds, text_image_similarity: r.textImageSimilarity }));
    else {
      const dim = (r.textEmbeds[0] ?? r.imageEmbeds[0]).length;
      console.log(`${texts.length} text(s), ${images.length} image(s), embedding size ${dim}${r.crossEmbeds ? ", cross embeddings for each (text i, image i) pair" : ""}`);
      if (texts.length && images.length) {
        console.log("cosine similarity (rows: texts, columns: images)");
        r.textImageSimilarity.forEach((row, i) => console.log(`  ${row.map((x) => fmt(x).padStart(8)).join(" ")}  ${texts[i]}`));
      }
    }
  });
}
