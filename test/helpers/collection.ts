/** A small collection for the `serve --db` tests, built with the real `bridgetower index` on the e2e fixture. */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { writePng, writeVideo } from "./media.js";
import { BIN, E2E } from "./serve.js";

/**
 * In `root`: src/ with the fixture's two images (coffee.png with a caption sidecar: a pair row), a generated JPEG and
 * a 4 s video without a transcript (frames at 1 s and 3 s), indexed into root/db. Five rows.
 */
export async function buildCollection(root: string): Promise<{ src: string; db: string }> {
  const src = join(root, "src");
  const db = join(root, "db");
  mkdirSync(src, { recursive: true });
  for (const name of ["chelsea.png", "coffee.png"]) copyFileSync(join(E2E, "images", name), join(src, name));
  writeFileSync(join(src, "coffee.txt"), "a cup of coffee on a table");
  const png = join(root, "bands.png");
  await writePng(png, 7, 64, 48);
  await sharp(png).jpeg().toFile(join(src, "bands.jpg"));
  rmSync(png);
  writeVideo(join(src, "clip.mp4"), 4);
  const r = spawnSync(BIN, ["index", src, "--db", db, "--model", E2E, "--frames-every", "2", "--threads", "1"], {
    encoding: "utf8", timeout: 120_000, env: { ...process.env, HF_HUB_OFFLINE: "1" },
  });
  if (r.status !== 0 || r.stdout !== "indexed 5, unchanged 0, removed 0, failed 0\n") throw new Error(`index failed (${r.status}): ${r.stdout}${r.stderr}`);
  return { src, db };
}
