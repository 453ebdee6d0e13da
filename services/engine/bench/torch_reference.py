"""Plain PyTorch forward pass of a Hugging Face Llama folder, collecting every hidden state h[0..L].

The comparison point for bench/hidden-states.bench.ts: same weights, same token ids, same batch size,
no transformers library (it is not installable here), float32 on the CPU with OpenBLAS.

usage: python3 torch_reference.py MODEL_DIR IDS.json BATCH_SIZE REPEATS  -> prints one JSON line
"""
import json, math, os, struct, sys, time

import torch

from safetensors_f32 import read_model_folder


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


@torch.no_grad()
def hidden_states(cfg, w, ids):
    B, T = ids.shape
    d, H = cfg["hidden_size"], cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads", H)
    hd = d // H
    eps = cfg.get("rms_norm_eps", 1e-6)
    inv = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv)
    cos, sin = torch.cat((freqs, freqs), -1).cos(), torch.cat((freqs, freqs), -1).sin()
    mask = torch.full((T, T), float("-inf")).triu(1)
    x = w["model.embed_tokens.weight"][ids]
    out = [x]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(B, T, H, hd).transpose(1, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(B, T, Hkv, hd).transpose(1, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(B, T, Hkv, hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, dim=-1)
        a = (att @ v).transpose(1, 2).reshape(B, T, d)
        x = x + a @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
        out.append(x)
    return out


def main():
    model_dir, ids_path, batch_size, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    cfg = json.load(open(f"{model_dir}/config.json"))
    w = read_model_folder(model_dir)
    ids = torch.tensor(json.load(open(ids_path)), dtype=torch.long)
    w_ids = ids[:batch_size]
    best, best_threads = float("inf"), 1
    # Debian's build starts with one OpenMP thread (OpenBLAS keeps its own pool); report the better setting.
    for threads in sorted({1, os.cpu_count()}):
        torch.set_num_threads(threads)
        hidden_states(cfg, w, w_ids)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            for i in range(0, ids.shape[0], batch_size):
                hs = hidden_states(cfg, w, ids[i : i + batch_size])
            elapsed = time.perf_counter() - start
            if elapsed < best:
                best, best_threads = elapsed, threads
    tokens = ids.numel()
    print(json.dumps({"torch": torch.__version__, "threads": best_threads, "seconds": best, "tokensPerSecond": tokens / best,
                      "checksum": float(hs[-1][0, 0, :4].sum())}))


if __name__ == "__main__":
    main()
