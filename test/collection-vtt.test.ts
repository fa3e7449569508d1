/** The WebVTT reader behind video indexing: cue times, plain text, context, and one-line errors with the line. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseVtt, withContext } from "../src/collection/vtt.js";
import { frameTimes } from "../src/collection/video.js";

describe("WebVTT", () => {
  it("reads cues with or without identifiers, hours and settings; drops tags, decodes entities; skips NOTE/STYLE", () => {
    const vtt = [
      "\uFEFFWEBVTT - a talk", "Kind: captions", "",
      "STYLE", "::cue { color: lime }", "",
      "NOTE this is a comment", "spanning lines", "",
      "intro", "00:00.500 --> 00:02.000 align:start position:10%", "<v Ann>Hello</v> <c.loud>there</c>,", "<i>friend</i> &amp; co &lt;3", "",
      "01:00:00.000 --> 01:00:01.250", "<00:00:00.700>late &#233;t&#xE9;", "",
      "00:00:03.000 --> 00:00:04.000", "<b></b>", "",
    ].join("\r\n");
    assert.deepEqual(parseVtt(vtt, "a.vtt"), [
      { startMs: 500, endMs: 2000, text: "Hello there, friend & co <3" },
      { startMs: 3600000, endMs: 3601250, text: "late été" },
    ]);
  });

  it("joins each cue with its neighbours", () => {
    const cues = ["a", "b", "c", "d"].map((text, i) => ({ startMs: i, endMs: i + 1, text }));
    assert.deepEqual(withContext(cues, 0), ["a", "b", "c", "d"]);
    assert.deepEqual(withContext(cues, 1), ["a b", "a b c", "b c d", "c d"]);
    assert.deepEqual(withContext(cues, 5), ["a b c d", "a b c d", "a b c d", "a b c d"]);
  });

  it("refuses what is not WebVTT, naming the line", () => {
    assert.throws(() => parseVtt("1\n00:00:00,000 --> 00:00:01,000\nan SRT file\n", "x.vtt"), /x\.vtt: not a WebVTT file/);
    assert.throws(() => parseVtt("WEBVTT\n\n00:00:00,000 --> 00:00:01,000\ncomma\n", "x.vtt"), /x\.vtt: line 3: bad cue timing "00:00:00,000 --> 00:00:01,000"/);
    assert.throws(() => parseVtt("WEBVTT\n\njust text\n", "x.vtt"), /line 3: expected a cue timing line/);
    assert.throws(() => parseVtt("WEBVTT\n\n00:02.000 --> 00:01.000\nbackwards\n", "x.vtt"), /line 3: the cue ends before it starts/);
    assert.throws(() => parseVtt("WEBVTT\n\n00:00.000 --> 00:01.000\none\n00:01.000 --> 00:02.000\ntwo\n", "x.vtt"), /line 4: cue text contains "-->"/);
    assert.throws(() => parseVtt("WEBVTT\n\n00:61.000 --> 00:62.000\nx\n", "x.vtt"), /bad cue timing/);
  });

  it("frame times: the middle of each window, the last one shorter", () => {
    assert.deepEqual(frameTimes(11_000, 5000), [2500, 7500, 10500]);
    assert.deepEqual(frameTimes(4000, 5000), [2000]);
    assert.deepEqual(frameTimes(0, 5000), []);
  });
});
