/** OUTDIR/README.md of a `--parts` export: what each graph reads and returns, and how to chain them. */
import type { ExportManifest, GraphInfo } from "./write.js";

const shape = (d: (number | string)[]) => `[${d.join(", ")}]`;
const io = (x: Record<string, (number | string)[]>) => Object.entries(x).map(([n, d]) => `\`${n}\` ${shape(d)}`).join(", ");
const row = (g: GraphInfo) => `| \`${g.file}\` | ${io(g.inputs)} | ${io(g.outputs)} |`;

export function partsReadme(m: ExportManifest): string {
  const source = "hub" in m.source ? `${m.source.hub} (commit ${m.source.commit})` : m.source.folder;
  const parts = m.graphs.filter((g) => !g.whole);
  const trunk = parts.some((g) => g.file === "trunk.onnx");
  const head = m.heads.includes("itm") ? "itm" : m.heads[0];
  const out = { itm: "itm.logits", mlm: "mlm.logits", itc: "itc.cross_embeds" }[head];
  return `# BridgeTower as ONNX graphs

Exported by \`bridgetower export\` ${m.bridgetower_version} from ${source}, ${m.dtype}, tested with ${m.onnxruntime_tested}.
Weights: ${m.weights.map((w) => `\`${w}\``).join(", ")} (ONNX external data, read from this folder).
Operators outside the default ONNX domain: ${m.custom_operators.map((o) => `\`${o}\``).join(", ") || "none"} (onnxruntime only).

## One graph per head

| graph | inputs | outputs |
|---|---|---|
${m.graphs.filter((g) => g.whole).map(row).join("\n")}

\`text_batch\` and \`image_batch\` are equal, or one of them is 1: a single image is paired with every text (and the
other way round); outputs have one row per pair.

## The parts: encode an image once, fuse it with many texts

| graph | inputs | outputs |
|---|---|---|
${parts.map(row).join("\n")}

Chain them by tensor name: \`text.onnx\` and \`vision.onnx\` encode each side on its own, ${trunk ? "`trunk.onnx` runs the cross-modal layers but the last, " : ""}and
\`head_{head}.onnx\` runs the last cross-modal layer, the poolers and the head. Feed every graph the inputs it lists
(\`session.get_inputs()\`) from the outputs of the graphs before it and \`attention_mask\`. An encoding of batch 1
pairs with every item of the other side, so the vision outputs of one image can be kept and reused with every
batch of captions. \`itc_text.onnx\` / \`itc_image.onnx\` (when present) give the contrastive embedding of one side
alone, for retrieval indexes.

\`\`\`python
import onnxruntime as ort
from transformers import BridgeTowerProcessor

processor = BridgeTowerProcessor.from_pretrained(".")   # this folder: config, tokenizer and preprocessor files
sessions = {n: ort.InferenceSession(f"{n}.onnx") for n in ["text", "vision"${trunk ? ', "trunk"' : ""}, "head_${head}"]}

def run(name, feeds):
    s = sessions[name]
    values = s.run(None, {i.name: feeds[i.name] for i in s.get_inputs()})
    return dict(zip((o.name for o in s.get_outputs()), values))

image = run("vision", processor.image_processor(images=[image_rgb], return_tensors="np"))   # once
for captions in batches:
    feeds = dict(processor.tokenizer(captions, padding=True, return_tensors="np"), **image)
    feeds.update(run("text", feeds))
${trunk ? '    feeds.update(run("trunk", feeds))\n' : ""}    result = run("head_${head}", feeds)["${out}"]       # one row per caption
\`\`\`
`;
}
