"""Export the Stable Diffusion stand-in (sd_arch.py) with random weights into the folder layout of
Hugging Face Optimum's ONNX export (`optimum-cli export onnx --model <SD 1.x checkpoint> <dir>`):

    model_index.json
    scheduler/scheduler_config.json
    tokenizer/{vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json}
    text_encoder/{model.onnx, config.json}
    unet/{model.onnx, model.onnx_data, config.json}   model.onnx_data: weights over 100 bytes
    vae_decoder/{model.onnx, config.json}
    vae_encoder/{model.onnx, config.json}

The tokenizer is a small synthetic CLIP-style BPE vocabulary (byte-level symbols, merges learned
here from a few hundred prompt words, CLIP's special tokens last); the networks use the real
vocabulary size.

float16 (Optimum's `--fp16`): PyTorch 1.13 on the CPU cannot run float16 convolutions, so the
float32 graphs are exported and then converted with the `onnx` package: every float initializer,
constant, cast target and graph input/output becomes float16 (Resize's float32 scales excepted),
so the whole network computes in float16, as a float16 export does.

    /usr/bin/python3 models/sd-standin/export.py --size tiny --out tests/fixtures/sd-tiny/fp32
    /usr/bin/python3 models/sd-standin/export.py --size tiny --dtype fp16 \
        --from tests/fixtures/sd-tiny/fp32 --out tests/fixtures/sd-tiny/fp16
    /usr/bin/python3 models/sd-standin/export.py --size full --out models/sd-standin/out/sd15-fp32
    /usr/bin/python3 models/sd-standin/export.py --size full --dtype fp16 \
        --from models/sd-standin/out/sd15-fp32 --out models/sd-standin/out/sd15-fp16

Options: --external {auto,always} puts the UNet's weights in model.onnx_data even when the graph
would fit one file (Optimum does so only past 2 GB; the tiny fixture uses it to test that path).
"""
import argparse
import gc
import inspect
import json
import os
import shutil
import sys
import tempfile
import unicodedata

import numpy as np
import onnx
import torch

sys.path.insert(0, os.path.dirname(__file__))
import sd_arch  # noqa: E402

OPSET = 17
EXTERNAL_THRESHOLD = 100  # bytes: Optimum's size_threshold for external data
DIFFUSERS_VERSION = "0.30.0"

# ------------------------------------------------------------------------------------------------
# Tokenizer: a CLIP-style byte-level BPE with a small learned vocabulary

CORPUS = """
a photo of an astronaut riding a horse on the moon high resolution oil painting of a cat
sitting on a red chair watercolor landscape with mountains and a lake at sunset portrait of a
woman in the style of a renaissance painting a dog wearing sunglasses on the beach a futuristic
city skyline at night neon lights cinematic lighting a bowl of fruit on a wooden table still life
an old lighthouse in a storm dramatic clouds a small house in a snowy forest digital art
highly detailed trending illustration concept art sharp focus studio photograph of a vintage car
a cup of coffee with latte art close up macro photography of a flower with dew drops blurry
low quality ugly deformed bad anatomy extra fingers the quick brown fox jumps over the lazy dog
""".split()


def bytes_to_unicode():
    """GPT-2's reversible map from bytes to printable unicode characters (CLIP uses it too)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, [chr(c) for c in codes]))


def learn_merges(words, count):
    """Greedy BPE: merge the most frequent adjacent pair `count` times (ties: first seen)."""
    byte_map = bytes_to_unicode()
    freq = {}
    for w in words:
        symbols = tuple(byte_map[b] for b in w.encode("utf-8"))
        symbols = symbols[:-1] + (symbols[-1] + "</w>",)
        freq[symbols] = freq.get(symbols, 0) + 1
    merges = []
    for _ in range(count):
        pairs = {}
        for symbols, n in freq.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] = pairs.get(pair, 0) + n
        if not pairs:
            break
        best = max(pairs, key=lambda p: pairs[p])
        merges.append(best)
        merged = {}
        for symbols, n in freq.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + n
        freq = merged
    return merges


def build_vocab(merges, vocab_size):
    """CLIP's order: 256 byte symbols, the same with `</w>`, one entry per merge, then
    <|startoftext|> and <|endoftext|> at the last two ids of the network's vocabulary."""
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab = {}
    for t in tokens:
        vocab.setdefault(t, len(vocab))
    if len(vocab) > vocab_size - 2:
        raise ValueError(f"vocab_size {vocab_size} holds fewer than {len(vocab) + 2} tokens")
    vocab["<|startoftext|>"] = vocab_size - 2
    vocab["<|endoftext|>"] = vocab_size - 1
    return vocab


def write_tokenizer(folder, merges, vocab):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    write_json(os.path.join(folder, "special_tokens_map.json"), special)
    write_json(os.path.join(folder, "tokenizer_config.json"), {
        **special, "add_prefix_space": False, "do_lower_case": True, "errors": "replace",
        "model_max_length": 77, "tokenizer_class": "CLIPTokenizer"})


def clip_words(text):
    """CLIP's pre-tokenisation: the contractions 's 't 're 've 'm 'll 'd, runs of letters, single
    digits and runs of other non-space characters, in that order of preference."""
    def kind(ch):
        cat = unicodedata.category(ch)
        return "L" if cat.startswith("L") else "N" if cat.startswith("N") else \
            "S" if ch.isspace() else "P"
    words, i = [], 0
    while i < len(text):
        c = next((c for c in ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d") if
                  text.startswith(c, i)), None)
        if c:
            words.append(c)
            i += len(c)
            continue
        k = kind(text[i])
        if k == "S":
            i += 1
            continue
        j = i + 1
        if k != "N":
            while j < len(text) and kind(text[j]) == k:
                j += 1
        words.append(text[i:j])
        i = j
    return words


def reference_tokenize(text, merges, vocab, max_length=77):
    """CLIP's tokenisation, written out plainly: lowercase, split into words, byte-map each word,
    apply merges by rank, add start/end tokens, truncate and pad with the end token. Used only to
    write the expected ids the TypeScript tests compare the tokenizer library with."""
    import re
    byte_map = bytes_to_unicode()
    ranks = {m: i for i, m in enumerate(merges)}
    text = re.sub(r"\s+", " ", text).strip().lower()
    ids = [vocab["<|startoftext|>"]]
    for word in clip_words(text):
        symbols = [byte_map[b] for b in word.encode("utf-8")]
        symbols[-1] += "</w>"
        while len(symbols) > 1:
            pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in
                     enumerate(zip(symbols, symbols[1:]))]
            rank, i = min(pairs)
            if rank == 1 << 30:
                break
            symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
        ids += [vocab[s] for s in symbols]
    ids = ids[:max_length - 1] + [vocab["<|endoftext|>"]]
    return ids + [vocab["<|endoftext|>"]] * (max_length - len(ids))


# ------------------------------------------------------------------------------------------------
# ONNX export


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def torch_export(model, args, path, input_names, output_names, dynamic_axes):
    kwargs = dict(input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes,
                  opset_version=OPSET, do_constant_folding=True)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    with torch.no_grad():
        torch.onnx.export(model, args, path, **kwargs)


def collect_external(folder, name="model.onnx", force=False):
    """Gather the weights of `folder/name` into one `name + "_data"` file, as Optimum does: every
    initializer and constant tensor of 100 bytes or more, in graph order. Reads the per-tensor
    files PyTorch writes for models over 2 GB one at a time, so the weights are never all in
    memory. Without external data and without `force`, the file is left as it is."""
    path = os.path.join(folder, name)
    model = onnx.load(path, load_external_data=False)
    tensors = list(model.graph.initializer) + [
        a.t for n in model.graph.node for a in n.attribute if a.type == onnx.AttributeProto.TENSOR]
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors)
    if not external and not force:
        return
    data_name = name + "_data"
    old_files = set()
    with open(os.path.join(folder, data_name + ".tmp"), "wb") as out:
        for t in tensors:
            if t.data_location == onnx.TensorProto.EXTERNAL:
                info = {e.key: e.value for e in t.external_data}
                old_files.add(info["location"])
                with open(os.path.join(folder, info["location"]), "rb") as f:
                    f.seek(int(info.get("offset", 0)))
                    raw = f.read(int(info["length"])) if "length" in info else f.read()
            elif t.HasField("raw_data") and len(t.raw_data) >= EXTERNAL_THRESHOLD:
                raw = t.raw_data
            else:
                continue
            offset = out.tell()
            out.write(raw)
            del t.external_data[:]
            t.ClearField("raw_data")
            t.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", data_name), ("offset", str(offset)),
                               ("length", str(len(raw)))):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
    for old in old_files:
        if old != data_name:
            os.remove(os.path.join(folder, old))
    os.replace(os.path.join(folder, data_name + ".tmp"), os.path.join(folder, data_name))
    onnx.save(model, path)


def export_text_encoder(cfg, out):
    model = sd_arch.ClipTextModel(cfg["text_encoder"]).eval()
    folder = os.path.join(out, "text_encoder")
    os.makedirs(folder, exist_ok=True)
    ids = torch.randint(0, 400, (1, cfg["text_encoder"]["max_position_embeddings"]))
    torch_export(model, (ids,), os.path.join(folder, "model.onnx"), ["input_ids"],
                 ["last_hidden_state", "pooler_output"],
                 {"input_ids": {0: "batch_size", 1: "sequence_length"},
                  "last_hidden_state": {0: "batch_size", 1: "sequence_length"},
                  "pooler_output": {0: "batch_size"}})
    collect_external(folder)
    write_json(os.path.join(folder, "config.json"), {
        **cfg["text_encoder"], "_name_or_path": "sd-standin", "architectures": ["CLIPTextModel"],
        "model_type": "clip_text_model", "torch_dtype": "float32"})


def export_unet(cfg, out, force_external):
    c = cfg["unet"]
    model = sd_arch.UNet(c).eval()
    folder = os.path.join(out, "unet")
    os.makedirs(folder, exist_ok=True)
    s = c["sample_size"]
    args = (torch.randn(2, c["in_channels"], s, s), torch.tensor(500.0),
            torch.randn(2, 77, c["cross_attention_dim"]))
    torch_export(model, args, os.path.join(folder, "model.onnx"),
                 ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
                 {"sample": {0: "batch_size", 2: "height", 3: "width"},
                  "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
                  "out_sample": {0: "batch_size", 2: "height", 3: "width"}})
    del model, args
    gc.collect()
    collect_external(folder, force=force_external)
    write_json(os.path.join(folder, "config.json"), {
        **c, "_class_name": "UNet2DConditionModel", "_diffusers_version": DIFFUSERS_VERSION,
        "center_input_sample": False, "downsample_padding": 1, "mid_block_scale_factor": 1,
        "use_linear_projection": False})


def vae_config(cfg):
    return {**cfg["vae"], "_class_name": "AutoencoderKL", "_diffusers_version": DIFFUSERS_VERSION}


def export_vae(cfg, out):
    v = cfg["vae"]
    latent = cfg["unet"]["sample_size"]
    decoder = sd_arch.VaeDecoder(v).eval()
    folder = os.path.join(out, "vae_decoder")
    os.makedirs(folder, exist_ok=True)
    torch_export(decoder, (torch.randn(1, v["latent_channels"], latent, latent),),
                 os.path.join(folder, "model.onnx"), ["latent_sample"], ["sample"],
                 {"latent_sample": {0: "batch_size", 2: "latent_height", 3: "latent_width"},
                  "sample": {0: "batch_size", 2: "latent_height * 8", 3: "latent_width * 8"}})
    write_json(os.path.join(folder, "config.json"), vae_config(cfg))
    del decoder
    encoder = sd_arch.VaeEncoder(v).eval()
    folder = os.path.join(out, "vae_encoder")
    os.makedirs(folder, exist_ok=True)
    torch_export(encoder, (torch.randn(1, v["in_channels"], 8 * latent, 8 * latent),),
                 os.path.join(folder, "model.onnx"), ["sample"], ["latent_parameters"],
                 {"sample": {0: "batch_size", 2: "sample_height", 3: "sample_width"},
                  "latent_parameters": {0: "batch_size", 2: "sample_height / 8",
                                        3: "sample_width / 8"}})
    write_json(os.path.join(folder, "config.json"), vae_config(cfg))


def write_pipeline_files(out, cfg):
    write_json(os.path.join(out, "model_index.json"), {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": DIFFUSERS_VERSION,
        "feature_extractor": [None, None], "requires_safety_checker": False,
        "safety_checker": [None, None], "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]})
    folder = os.path.join(out, "scheduler")
    os.makedirs(folder, exist_ok=True)
    write_json(os.path.join(folder, "scheduler_config.json"), {
        "_class_name": "PNDMScheduler", "_diffusers_version": DIFFUSERS_VERSION,
        "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
        "clip_sample": False, "num_train_timesteps": 1000, "prediction_type": "epsilon",
        "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
        "timestep_spacing": "leading", "trained_betas": None})


def export_fp32(cfg, out, force_external, seed):
    torch.manual_seed(seed)
    os.makedirs(out, exist_ok=True)
    merges = learn_merges(CORPUS, 300)
    vocab = build_vocab(merges, cfg["text_encoder"]["vocab_size"])
    write_tokenizer(os.path.join(out, "tokenizer"), merges, vocab)
    write_pipeline_files(out, cfg)
    for step in (lambda: export_text_encoder(cfg, out), lambda: export_unet(cfg, out, force_external),
                 lambda: export_vae(cfg, out)):
        step()
        gc.collect()
    return merges, vocab


# ------------------------------------------------------------------------------------------------
# float16


def to_fp16_array(raw):
    return np.frombuffer(raw, dtype=np.float32).astype(np.float16).tobytes()


def float32_only_inputs(graph):
    """Values that must stay float32 in a float16 graph: Resize's roi and scales."""
    keep = set()
    for node in graph.node:
        if node.op_type == "Resize":
            keep.update(i for i in node.input[1:3] if i)
    return keep


def convert_tensor(t, folder_in, data_out, data_name):
    """A float32 tensor (inline or external) to float16, written to `data_out` when external."""
    if t.data_location == onnx.TensorProto.EXTERNAL:
        info = {e.key: e.value for e in t.external_data}
        with open(os.path.join(folder_in, info["location"]), "rb") as f:
            f.seek(int(info.get("offset", 0)))
            raw = f.read(int(info["length"]))
        half = to_fp16_array(raw)
        del t.external_data[:]
        if data_out is None or len(half) < EXTERNAL_THRESHOLD:
            t.data_location = onnx.TensorProto.DEFAULT
            t.raw_data = half
        else:
            offset = data_out.tell()
            data_out.write(half)
            for key, value in (("location", data_name), ("offset", str(offset)),
                               ("length", str(len(half)))):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
    elif t.HasField("raw_data"):
        t.raw_data = to_fp16_array(t.raw_data)
    else:
        values = np.array(t.float_data, dtype=np.float16)
        t.ClearField("float_data")
        t.raw_data = values.tobytes()
    t.data_type = onnx.TensorProto.FLOAT16


def external_bytes(folder, tensors):
    total = 0
    for t in tensors:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            info = {e.key: e.value for e in t.external_data}
            total += int(info["length"]) if "length" in info else os.path.getsize(
                os.path.join(folder, info["location"]))
    return total


def convert_graph_fp16(folder_in, folder_out, name="model.onnx"):
    """The float16 twin of one ONNX graph: weights, constants, casts and float I/O in float16.
    As Optimum's --fp16 export: one file when the float16 graph fits protobuf's 2 GB (the SD 1.5
    UNet, 1.7 GB), the weights in one `model.onnx_data` otherwise."""
    model = onnx.load(os.path.join(folder_in, name), load_external_data=False)
    g = model.graph
    keep = float32_only_inputs(g)
    F32, F16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    has_external = external_bytes(folder_in, g.initializer) // 2 > 2 ** 31 - 2 ** 26
    data_name = name + "_data"
    data_out = open(os.path.join(folder_out, data_name), "wb") if has_external else None
    try:
        for t in g.initializer:
            if t.data_type == F32 and t.name not in keep:
                convert_tensor(t, folder_in, data_out, data_name)
        for node in g.node:
            for a in node.attribute:
                if node.op_type == "Cast" and a.name == "to" and a.i == F32:
                    a.i = F16
                if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == F32 and \
                        not (node.op_type == "Constant" and node.output[0] in keep):
                    convert_tensor(a.t, folder_in, None, data_name)
    finally:
        if data_out is not None:
            data_out.close()
    for v in list(g.input) + list(g.output):
        if v.type.tensor_type.elem_type == F32:
            v.type.tensor_type.elem_type = F16
    del g.value_info[:]
    onnx.save(model, os.path.join(folder_out, name))


def export_fp16(folder_in, out):
    """Optimum's `--fp16` layout from a float32 export of the same networks."""
    os.makedirs(out, exist_ok=True)
    for entry in ("model_index.json", "scheduler", "tokenizer"):
        src, dst = os.path.join(folder_in, entry), os.path.join(out, entry)
        if os.path.isdir(src):
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy(src, dst)
    for sub in ("text_encoder", "unet", "vae_decoder", "vae_encoder"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
        convert_graph_fp16(os.path.join(folder_in, sub), os.path.join(out, sub))
        with open(os.path.join(folder_in, sub, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        if "torch_dtype" in config:
            config["torch_dtype"] = "float16"
        write_json(os.path.join(out, sub, "config.json"), config)
        gc.collect()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--dtype", choices=["fp32", "fp16"], default="fp32")
    parser.add_argument("--from", dest="source", help="float32 export to convert (--dtype fp16)")
    parser.add_argument("--external", choices=["auto", "always"], default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokens", help="also write the reference token ids of a few prompts")
    parser.add_argument("--out", required=True)
    a = parser.parse_args()
    cfg = {"tiny": sd_arch.TINY, "full": sd_arch.SD15}[a.size]
    torch.set_num_threads(1)
    if a.dtype == "fp32":
        merges, vocab = export_fp32(cfg, a.out, a.external == "always", a.seed)
        if a.tokens:
            prompts = ["a photo of an astronaut riding a horse on the moon",
                       "Oil painting,  of a CAT!!", "", "zebra's 42 neon-lights"]
            write_json(a.tokens, {"prompts": prompts,
                                  "ids": [reference_tokenize(p, merges, vocab) for p in prompts]})
    else:
        source = a.source
        if source is None:
            source = tempfile.mkdtemp(prefix="sd-standin-fp32-")
            export_fp32(cfg, source, a.external == "always", a.seed)
        export_fp16(source, a.out)
        if a.source is None:
            shutil.rmtree(source)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
