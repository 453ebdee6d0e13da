"""Hugging Face transformers on a folder the engine exported: its tokenizer and next-token logits.

The reference for bench/transformers-export.bench.ts. transformers loads the folder as any Llama
checkpoint (AutoTokenizer from tokenizer.json + tokenizer_config.json, AutoModelForCausalLM from
config.json + safetensors), in float32 on the CPU.

usage: python3 transformers_reference.py MODEL_DIR REQUEST.json OUT_DIR
  REQUEST.json: {"prompts": [text, ...], "ids": [[token id, ...], ...]}
  writes OUT_DIR/logits.f32 (every position of every sequence of "ids", concatenated, vocab-wide rows)
  and OUT_DIR/result.json: {"tokens": [[id, ...] per prompt, no special tokens], "layers": N, "transformers": version}
"""
import json, os, sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

model_dir, request_path, out_dir = sys.argv[1:4]
with open(request_path) as f:
    request = json.load(f)

tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
model.eval()

tokens = [tokenizer(prompt, add_special_tokens=False)["input_ids"] for prompt in request["prompts"]]
with open(os.path.join(out_dir, "logits.f32"), "wb") as f, torch.no_grad():
    for ids in request["ids"]:
        logits = model(torch.tensor([ids], dtype=torch.long)).logits[0]
        f.write(logits.to(torch.float32).contiguous().numpy().tobytes())

with open(os.path.join(out_dir, "result.json"), "w") as f:
    json.dump({"tokens": tokens, "layers": model.config.num_hidden_layers, "transformers": transformers.__version__}, f)
