/** WebVTT transcripts: cue times and plain text (tags and entities removed), and a cue with its neighbours. */
import { SourceError } from "./errors.js";

export interface Cue {
  startMs: number;
  endMs: number;
  text: string;
}

const TIME = /^(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})$/;
const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " ", lrm: "", rlm: "" };

function parseTime(s: string): number | undefined {
  const m = TIME.exec(s);
  if (!m) return undefined;
  return ((Number(m[1] ?? 0) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4]);
}

/** Cue payload to plain text: voice/class/timestamp tags dropped, entities decoded, whitespace collapsed. */
export function cueText(payload: string): string {
  return payload
    .replace(/<[^>]*>/g, "")
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (all, e: string) => {
      if (e[0] === "#") {
        const code = e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : all;
      }
      return ENTITIES[e.toLowerCase()] ?? all;
    })
    .replace(/\s+/g, " ")
    .trim();
}

/** Parses a WebVTT file's text; throws SourceError (naming `file` and the line) when it is not valid WebVTT. */
export function parseVtt(source: string, file: string): Cue[] {
  const lines = source.replace(/^\uFEFF/, "").split(/\r\n|\r|\n/);
  if (!/^WEBVTT(?:[ \t].*)?$/.test(lines[0] ?? "")) throw new SourceError(file, "not a WebVTT file (the first line must be WEBVTT)");
  const cues: Cue[] = [];
  let i = 1;
  // The header runs to the first blank line.
  while (i < lines.length && lines[i].trim() !== "") i++;
  while (i < lines.length) {
    while (i < lines.length && lines[i].trim() === "") i++;
    if (i >= lines.length) break;
    const start = i;
    const block: string[] = [];
    while (i < lines.length && lines[i].trim() !== "") block.push(lines[i++]);
    if (/^(NOTE|STYLE|REGION)(\s|$)/.test(block[0])) continue;
    const t = block[0].includes("-->") ? 0 : block[1]?.includes("-->") ? 1 : -1;
    if (t < 0) throw new SourceError(file, `line ${start + 1}: expected a cue timing line "start --> end"`);
    const m = /^\s*(\S+)\s+-->\s+(\S+)(?:\s.*)?$/.exec(block[t]);
    const startMs = m ? parseTime(m[1]) : undefined;
    const endMs = m ? parseTime(m[2]) : undefined;
    if (startMs === undefined || endMs === undefined)
      throw new SourceError(file, `line ${start + t + 1}: bad cue timing "${block[t].trim()}" (expected hh:mm:ss.ttt --> hh:mm:ss.ttt)`);
    if (endMs < startMs) throw new SourceError(file, `line ${start + t + 1}: the cue ends before it starts`);
    const payload = block.slice(t + 1);
    if (payload.some((l) => l.includes("-->"))) throw new SourceError(file, `line ${start + t + 2}: cue text contains "-->" (missing blank line?)`);
    const text = cueText(payload.join("\n"));
    if (text) cues.push({ startMs, endMs, text });
  }
  return cues;
}

/** Each cue's text joined with `context` neighbouring cues on each side (as OPEA's MultimodalQnA does). */
export function withContext(cues: Cue[], context: number): string[] {
  return cues.map((_, i) => cues.slice(Math.max(0, i - context), i + context + 1).map((c) => c.text).join(" "));
}
