import assert from "node:assert/strict";
import { join } from "node:path";
import { clipTokenizerJson, loadTokenizer } from "../../lib/onnx/tokenizer.ts";
import { ROOT } from "../_run_task.ts";

const FIXTURE = join(ROOT, "tests/fixtures/sd-tiny");

Deno.test("loadTokenizer() matches CLIP's tokenisation of the fixture's vocabulary", async () => {
  // tokens.json: ids written by models/sd-standin/export.py with CLIP's algorithm spelled out.
  const ref = JSON.parse(await Deno.readTextFile(join(FIXTURE, "tokens.json")));
  const tok = await loadTokenizer(join(FIXTURE, "fp32/tokenizer"), 77);
  ref.prompts.forEach((p: string, i: number) => assert.deepEqual(tok.encode(p), ref.ids[i], p));
});

Deno.test("loadTokenizer() cuts long prompts to max_length ending with the end token", async () => {
  const tok = await loadTokenizer(join(FIXTURE, "fp32/tokenizer"), 8);
  const ids = tok.encode("a photo of a cat a photo of a cat a photo of a cat");
  assert.equal(ids.length, 8);
  assert.equal(ids[0], 1022);
  assert.equal(ids[7], 1023);
  assert.notEqual(ids[6], 1023);
});

Deno.test("loadTokenizer() prefers a folder's tokenizer.json", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const src = join(FIXTURE, "fp32/tokenizer");
    const vocab = JSON.parse(await Deno.readTextFile(join(src, "vocab.json")));
    const merges = (await Deno.readTextFile(join(src, "merges.txt"))).split("\n").slice(1)
      .filter((l) => l !== "");
    const json = clipTokenizerJson(vocab, merges, {
      bos: "<|startoftext|>",
      eos: "<|endoftext|>",
      unk: "<|endoftext|>",
    });
    await Deno.writeTextFile(join(dir, "tokenizer.json"), JSON.stringify(json));
    await Deno.copyFile(join(src, "tokenizer_config.json"), join(dir, "tokenizer_config.json"));
    const fromJson = await loadTokenizer(dir, 77);
    const fromFiles = await loadTokenizer(src, 77);
    assert.deepEqual(fromJson.encode("an oil painting"), fromFiles.encode("an oil painting"));
    await Deno.remove(join(dir, "tokenizer.json"));
    await assert.rejects(() => loadTokenizer(dir, 77), /holds neither tokenizer\.json nor CLIP's/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
