"""References the engine did not write, for its GGUF reader (bench/gguf-reference.bench.ts, test/gguf.test.ts).

Uses llama.cpp's own Python packages: `gguf` (gguf-py: GGUFReader, GGUFWriter, gguf.quants.dequantize),
`tokenizers` (Hugging Face) and, for logits, `llama-cpp-python` (llama.cpp compiled on this machine).
bench/gguf-reference.bench.ts creates a virtual environment with them outside the repository.

usage:
  python3 gguf_reference.py fixture OUT_DIR
      writes OUT_DIR/quant-fixture.gguf: one tensor per supported GGML type, random blocks (scales kept
      finite), written by gguf-py's GGUFWriter; and OUT_DIR/quant-fixture.json + .f32: gguf-py's
      dequantization of each tensor.
  python3 gguf_reference.py dequant MODEL.gguf OUT_DIR
      gguf-py's dequantization of every tensor of MODEL.gguf into OUT_DIR/dequant.f32, indexed by
      OUT_DIR/dequant.json ({name, type, shape, offset (in floats), count}).
  python3 gguf_reference.py pre-variant MODEL.gguf PRE OUT.gguf
      MODEL.gguf's metadata alone (no tensors) with tokenizer.ggml.pre set to PRE: the same vocabulary
      under another pre-tokenizer, for llama.cpp (vocab only) and the engine to tokenize.
  python3 gguf_reference.py tokenize MODEL.gguf TEXTS.json OUT.json
      ids of each text from llama.cpp (llama-cpp-python, vocab only, special tokens parsed) and from a
      Hugging Face `tokenizers` BPE built from the GGUF's tokens and merges with SmolLM2's pre-tokenizer;
      writes {llama_cpp: [[ids]...], hf_tokenizers: [[ids]...]} (a side is null when its package is
      missing). (llama.cpp prints to stdout, hence a file.)
  python3 gguf_reference.py f32-copy MODEL.gguf OUT.gguf
      the same model with every tensor dequantized to F32 by gguf-py (metadata copied), so that llama.cpp
      computes in float32 as the engine does.
  python3 gguf_reference.py logits MODEL.gguf IDS.json OUT.f32
      llama.cpp's logits at every position of each id sequence (n_ctx 512, float32 KV cache, one thread
      per core, no BOS added: the ids are used as given), written as float32 one sequence after another.
"""
import json
import os
import sys

import numpy as np


def fixture(out_dir):
    import gguf
    from gguf import GGMLQuantizationType as T

    rng = np.random.default_rng(16)
    # byte offsets of the float16 scale fields in one block, kept finite and moderate
    half_fields = {
        "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
        "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
    }
    rows, cols = 3, 512
    writer = gguf.GGUFWriter(os.path.join(out_dir, "quant-fixture.gguf"), "llama")
    expected = []
    for name in ["F32", "F16", "BF16", *half_fields]:
        qtype = T[name]
        block, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        if name == "F32":
            raw = rng.standard_normal((rows, cols)).astype(np.float32)
            writer.add_tensor(f"t.{name}", raw)
            values = raw
        elif name == "F16":
            raw = rng.standard_normal((rows, cols)).astype(np.float16)
            writer.add_tensor(f"t.{name}", raw)
            values = raw.astype(np.float32)
        else:
            if name == "BF16":
                bits = (rng.standard_normal((rows, cols)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
                raw = bits.view(np.uint8).reshape(rows, cols * 2)
            else:
                raw = rng.integers(0, 256, size=(rows, cols // block, block_bytes), dtype=np.uint8)
                for at in half_fields[name]:
                    scale = (rng.standard_normal(raw.shape[:2]) * 0.05).astype(np.float16)
                    raw[:, :, at:at + 2] = scale.view(np.uint8).reshape(*raw.shape[:2], 2)
                raw = raw.reshape(rows, -1)
            writer.add_tensor(f"t.{name}", raw, raw_dtype=qtype)
            values = gguf.quants.dequantize(raw, qtype).astype(np.float32)
        expected.append((name, values.reshape(-1)))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    index, offset = [], 0
    with open(os.path.join(out_dir, "quant-fixture.f32"), "wb") as f:
        for name, values in expected:
            f.write(values.tobytes())
            index.append({"name": f"t.{name}", "type": name, "offset": offset, "count": int(values.size)})
            offset += int(values.size)
    with open(os.path.join(out_dir, "quant-fixture.json"), "w") as f:
        json.dump({"gguf": gguf.__name__, "tensors": index}, f)


def dequant(model, out_dir):
    import gguf
    reader = gguf.GGUFReader(model)
    index, offset = [], 0
    with open(os.path.join(out_dir, "dequant.f32"), "wb") as f:
        for t in reader.tensors:
            values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
            f.write(values.tobytes())
            index.append({"name": t.name, "type": t.tensor_type.name, "shape": [int(n) for n in reversed(t.shape)], "offset": offset, "count": int(values.size)})
            offset += int(values.size)
    with open(os.path.join(out_dir, "dequant.json"), "w") as f:
        json.dump({"tensors": index}, f)


def f32_copy(model, out_path):
    import gguf
    reader = gguf.GGUFReader(model)
    writer = gguf.GGUFWriter(out_path, arch=None)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.file_type":
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), vtype, sub_type)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for t in reader.tensors:
        values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        writer.add_tensor(t.name, values.reshape([int(n) for n in reversed(t.shape)]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def pre_variant(model, pre, out_path):
    import gguf
    reader = gguf.GGUFReader(model)
    writer = gguf.GGUFWriter(out_path, arch=None)
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, pre if key == "tokenizer.ggml.pre" else field.contents(), vtype, sub_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def field_value(reader, key):
    field = reader.fields[key]
    return field.contents()


def tokenize(model, texts_path, out_path):
    with open(texts_path) as f:
        texts = json.load(f)
    result = {"llama_cpp": None, "hf_tokenizers": None}
    try:
        from llama_cpp import Llama
        llm = Llama(model_path=model, vocab_only=True, verbose=False)
        result["llama_cpp"] = [llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in texts]
    except ImportError:
        pass
    try:
        import gguf
        from tokenizers import Tokenizer, models, pre_tokenizers, decoders, AddedToken
        reader = gguf.GGUFReader(model)
        if field_value(reader, "tokenizer.ggml.model") != "gpt2" or field_value(reader, "tokenizer.ggml.pre") != "smollm":
            raise ImportError("the HF tokenizers reference is built for SmolLM2's vocabulary only")
        tokens = field_value(reader, "tokenizer.ggml.tokens")
        merges = field_value(reader, "tokenizer.ggml.merges")
        types = field_value(reader, "tokenizer.ggml.token_type")
        vocab = {t: i for i, t in enumerate(tokens)}
        bpe = models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges], ignore_merges=False)
        tok = Tokenizer(bpe)
        # SmolLM2's tokenizer.json: digits split one by one, then GPT-2's byte-level regex
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False) for i, kind in enumerate(types) if kind == 3])
        result["hf_tokenizers"] = [tok.encode(t, add_special_tokens=False).ids for t in texts]
    except ImportError:
        pass
    with open(out_path, "w") as f:
        json.dump(result, f)


def logits(model, ids_path, out_path):
    from llama_cpp import Llama
    with open(ids_path) as f:
        sequences = json.load(f)
    # type_k/type_v 0 = GGML_TYPE_F32: a float32 KV cache (llama.cpp's default is float16)
    llm = Llama(model_path=model, n_ctx=512, logits_all=True, n_threads=os.cpu_count(), type_k=0, type_v=0, verbose=False)
    with open(out_path, "wb") as f:
        for ids in sequences:
            llm.reset()
            llm.eval(ids)
            f.write(np.asarray(llm.scores[: len(ids)], dtype=np.float32).tobytes())


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"fixture": fixture, "dequant": dequant, "f32-copy": f32_copy, "pre-variant": pre_variant, "tokenize": tokenize, "logits": logits}[command](*args)
