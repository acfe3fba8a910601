/**
 * Test helper: the reduced-width Stable Diffusion twins in `tests/fixtures/sd-tiny`, exported by
 * `models/sd-standin/export.py` in Optimum's folder layout (fp32 with the UNet's weights in
 * model.onnx_data, fp16 with them inside model.onnx).
 */
import { join } from "node:path";
import { ROOT } from "./_run_task.ts";

/** The reduced-width Stable Diffusion twins (models/sd-standin/export.py). */
export const SD_TINY = {
  fp32: join(ROOT, "tests/fixtures/sd-tiny/fp32"),
  fp16: join(ROOT, "tests/fixtures/sd-tiny/fp16"),
};

/** A copy of a fixture folder in a fresh temporary folder. */
export async function copyFolder(src: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ld3-sd-" });
  const copy = async (from: string, to: string) => {
    await Deno.mkdir(to, { recursive: true });
    for await (const e of Deno.readDir(from)) {
      if (e.isDirectory) await copy(join(from, e.name), join(to, e.name));
      else await Deno.copyFile(join(from, e.name), join(to, e.name));
    }
  };
  await copy(src, dir);
  return dir;
}
