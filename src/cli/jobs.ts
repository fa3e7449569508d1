/** The user-level commands: itm, fill-mask, embed. Formatting only; the work is in src/tasks. */
import { InputError } from "../errors.js";
import { BridgeTowerForContrastiveLearning, BridgeTowerForImageAndTextRetrieval, BridgeTowerForMaskedLM } from "../model/bridgetower.js";
import { BridgeTowerProcessor } from "../processor.js";
import { embed, fillMask, rankTexts } from "../tasks/index.js";
import { parse, type CommandSpec } from "./args.js";
import { fmt, list, MODEL_OPTIONS, modelFolder, positiveInt, status } from "./common.js";

export const itmSpec: CommandSpec = {
  name: "itm",
  usage: "bridgetower itm IMAGE TEXT [TEXT...] [--model ID|DIR] [--json]",
  summary: "Rank texts by how well they match an image (image-text matching).",
  options: MODEL_OPTIONS,
  positionals: true,
};

export async function itm(argv: string[]): Promise<void> {
  const { values: o, positionals } = parse(itmSpec, argv);
  const [image, ...texts] = positionals;
  if (!image || texts.length === 0) throw new InputError("itm", "needs an IMAGE and at least one TEXT (see --help)");
  const m = await modelFolder(o);
  const [processor, model] = await Promise.all([
    BridgeTowerProcessor.fromPretrained(m.dir),
    BridgeTowerForImageAndTextRetrieval.fromPretrained(m.dir, m),
  ]);
  try {
    status(`bridgetower: scoring ${texts.length} text(s)`);
    const ranked = await rankTexts(model, processor, image, texts);
    if (o.json) console.log(JSON.stringify(ranked.map((r) => ({ text: r.text, score: r.score, logits: r.logits }))));
    else {
      console.log(`${"rank".padEnd(5)} ${"score".padEnd(7)} text`);
      ranked.forEach((r, i) => console.log(`${String(i + 1).padEnd(5)} ${fmt(r.score)}  ${r.text}`));
    }
  } finally {
    await model.dispose();
  }
}

export const fillMaskSpec: CommandSpec = {
  name: "fill-mask",
  usage: 'bridgetower fill-mask IMAGE "a <mask> looking out of the window" [--top-k 5] [--model ID|DIR] [--json]',
  summary: "Fill each <mask> of a caption given an image (masked language modeling).",
  options: { ...MODEL_OPTIONS, "top-k": { type: "string", help: "candidates per mask (default 5)" } },
  positionals: true,
};

export async function fillMaskCommand(argv: string[]): Promise<void> {
  const { values: o, positionals } = parse(fillMaskSpec, argv);
  if (positionals.length !== 2) throw new InputError("fill-mask", "needs an IMAGE and one TEXT containing <mask> (see --help)");
  const [image, text] = positionals;
  const topK = positiveInt(o["top-k"], "--top-k") ?? 5;
  const m = await modelFolder(o);
  const [processor, model] = await Promise.all([BridgeTowerProcessor.fromPretrained(m.dir), BridgeTowerForMaskedLM.fromPretrained(m.dir, m)]);
  try {
    const r = await fillMask(model, processor, image, text, topK);
    if (o.json)
      console.log(JSON.stringify({ sequence: r.sequence, masks: r.masks.map((c) => c.map((x) => ({ token: x.token, token_id: x.tokenId, score: x.score }))) }));
    else {
      console.log(r.sequence);
      r.masks.forEach((cands, k) => {
        console.log(`mask ${k + 1}:`);
        for (const c of cands) console.log(`  ${c.score < 0.01 ? c.score.toExponential(3) : fmt(c.score)}  ${JSON.stringify(c.token)}`);
      });
    }
  } finally {
    await model.dispose();
  }
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
  const m = await modelFolder(o);
  const [processor, model] = await Promise.all([
    BridgeTowerProcessor.fromPretrained(m.dir),
    BridgeTowerForContrastiveLearning.fromPretrained(m.dir, m),
  ]);
  try {
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
  } finally {
    await model.dispose();
  }
}
