/** A child process spoken to in JSON lines (bench/child.ts, bench/torch_pair.py). */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export class LineProcess {
  private readonly child: ChildProcess;
  private readonly lines: AsyncIterator<string>;
  private stderr = "";

  constructor(readonly label: string, command: string, args: string[], cwd?: string) {
    this.child = spawn(command, args, { cwd, stdio: ["pipe", "pipe", "pipe"] });
    this.child.stderr!.on("data", (d) => (this.stderr = (this.stderr + d).slice(-4000)));
    this.lines = createInterface({ input: this.child.stdout! })[Symbol.asyncIterator]();
  }

  /** The next JSON line the process prints; throws with its stderr if it exits first. */
  async next(): Promise<Record<string, number>> {
    for (;;) {
      const { value, done } = await this.lines.next();
      if (done) throw new Error(`${this.label} exited early:\n${this.stderr}`);
      if (value.startsWith("{")) return JSON.parse(value);
    }
  }

  async ask(line: string): Promise<Record<string, number>> {
    this.child.stdin!.write(`${line}\n`);
    return this.next();
  }

  close(): void {
    this.child.stdin!.end();
    this.child.kill();
  }
}
