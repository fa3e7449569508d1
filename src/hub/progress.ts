import type { HubProgress } from "./options.js";

const BIG = 10 * 1024 * 1024;

function mb(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

// True while a terminal progress line waits for its end, so a warning starts on a fresh line.
let lineOpen = false;

export function warn(message: string): void {
  process.stderr.write(`${lineOpen ? "\n" : ""}warning: ${message}\n`);
  lineOpen = false;
}

/** Ends an unfinished terminal progress line (a download failed), so what follows starts cleanly. */
export function endProgressLine(): void {
  if (lineOpen) process.stderr.write("\n");
  lineOpen = false;
}

/**
 * The default progress report for files over 10 MB: a line rewritten with \r at most once a second on a
 * terminal; otherwise (logs, CI) a start line, a line every 10 s, and an end line.
 */
export function stderrProgress(label: string, verbs = { doing: "downloading", done: "downloaded" }): (p: HubProgress) => void {
  const tty = process.stderr.isTTY === true;
  const every = tty ? 1000 : 10_000;
  let last = -Infinity;
  let finished = false;
  return (p) => {
    if (finished || p.total === undefined || p.total <= BIG) return;
    const now = Date.now();
    const done = p.downloaded >= p.total;
    const pct = Math.floor((100 * p.downloaded) / p.total);
    const text = `${label}: ${mb(p.downloaded)} / ${mb(p.total)} (${pct}%)`;
    if (done) {
      finished = true;
      process.stderr.write(tty ? `\r${text}\x1b[K\n` : `${label}: ${verbs.done} ${mb(p.total)}\n`);
      lineOpen = false;
    } else if (now - last >= every) {
      const first = last === -Infinity;
      last = now;
      process.stderr.write(tty ? `\r${text}\x1b[K` : first ? `${label}: ${verbs.doing} ${mb(p.total)}\n` : `${text}\n`);
      lineOpen = tty;
    }
  };
}
