"""Plain PyTorch training of a LLM-Streamline replacement on hidden-state pairs: the comparison point for
bench/training.bench.ts. Same replacement (FFN, SWIGLU or LAYER of a Llama-family model, initialised from
the same tensors), same pairs, same batch, same objective (MSE) and optimizer (torch.optim.AdamW with
gradient clipping by global norm), float32 on the CPU. No transformers library (not installable here):
the layer is written out as transformers' modeling_llama.py computes it (rotate-half RoPE, GQA by repeating
KV heads, RMSNorm).

usage: python3 torch_training_reference.py WORK_DIR KIND STEPS WARMUP THREADS...  -> one JSON line

WORK_DIR holds meta.json (sizes, batch, windows), init.safetensors (the replacement's initial tensors,
Hugging Face names relative to a layer, [out, in] matrices), inputs.f32 and targets.f32 ([N, T, d]).
"""
import json, math, os, resource, struct, sys, time

import torch

from safetensors_f32 import read_safetensors


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Replacement(torch.nn.Module):
    def __init__(self, kind, meta, init):
        super().__init__()
        self.kind, self.meta = kind, meta
        self.params = torch.nn.ParameterDict({name.replace(".", "__"): torch.nn.Parameter(t) for name, t in init.items()})
        T, hd = meta["seqLen"], meta["headDim"]
        inv = 1.0 / (meta["ropeTheta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv)
        emb = torch.cat((freqs, freqs), -1)
        self.cos, self.sin = emb.cos(), emb.sin()
        self.mask = torch.full((T, T), float("-inf")).triu(1)

    def w(self, name):
        return self.params[name.replace(".", "__")]

    def mlp(self, x):
        eps = self.meta["normEps"]
        h = rms_norm(x, self.w("post_attention_layernorm.weight"), eps)
        g = h @ self.w("mlp.gate_proj.weight").T
        return x + (torch.nn.functional.silu(g) * (h @ self.w("mlp.up_proj.weight").T)) @ self.w("mlp.down_proj.weight").T

    def attention(self, x):
        m = self.meta
        B, T, d = x.shape
        H, Hkv, hd = m["heads"], m["kvHeads"], m["headDim"]
        h = rms_norm(x, self.w("input_layernorm.weight"), m["normEps"])
        q = (h @ self.w("self_attn.q_proj.weight").T).view(B, T, H, hd).transpose(1, 2)
        k = (h @ self.w("self_attn.k_proj.weight").T).view(B, T, Hkv, hd).transpose(1, 2)
        v = (h @ self.w("self_attn.v_proj.weight").T).view(B, T, Hkv, hd).transpose(1, 2)
        q, k = q * self.cos + rotate_half(q) * self.sin, k * self.cos + rotate_half(k) * self.sin
        k, v = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + self.mask, dim=-1)
        a = (att @ v).transpose(1, 2).reshape(B, T, H * hd)
        return x + a @ self.w("self_attn.o_proj.weight").T

    def forward(self, x):
        if self.kind == "FFN":
            n = rms_norm(x, self.w("norm.weight"), self.meta["normEps"])
            hidden = torch.nn.functional.silu(n @ self.w("fc1.weight").T + self.w("fc1.bias"))
            return x + hidden @ self.w("fc2.weight").T + self.w("fc2.bias")
        if self.kind == "SWIGLU":
            return self.mlp(x)
        return self.mlp(self.attention(x))


def linear_fit(x, y, ridge, chunk=4096):
    """LINEAR as the engine fits it: normal equations of [x, 1] (products in float32 over 4096-row chunks,
    sums in float64), ridge relative to the trace on the weights only, Cholesky solve in float64; returns
    the training MSE of the fit."""
    n, d = x.shape
    gram = torch.zeros(d + 1, d + 1, dtype=torch.float64)
    cross = torch.zeros(d + 1, d, dtype=torch.float64)
    for i in range(0, n, chunk):
        xs, ys = x[i : i + chunk], y[i : i + chunk]
        gram[:d, :d] += (xs.T @ xs).double()
        s = xs.sum(0).double()
        gram[:d, d] += s
        gram[d, :d] += s
        gram[d, d] += xs.shape[0]
        cross[:d] += (xs.T @ ys).double()
        cross[d] += ys.sum(0).double()
    lam = ridge * torch.diagonal(gram)[:d].sum() / d
    gram[range(d), range(d)] += lam
    solution = torch.cholesky_solve(cross, torch.linalg.cholesky(gram))
    w, b = solution[:d].float(), solution[d].float()
    err = 0.0
    for i in range(0, n, chunk):
        err += float(((x[i : i + chunk] @ w + b - y[i : i + chunk]) ** 2).sum())
    return err / (n * d)


def main():
    work, kind, steps, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    thread_counts = [int(t) for t in sys.argv[5:]] or [1]
    meta = json.load(open(os.path.join(work, "meta.json")))
    N, T, d, B = meta["windows"], meta["seqLen"], meta["hiddenSize"], meta["batchSize"]
    inputs = torch.frombuffer(bytearray(open(os.path.join(work, "inputs.f32"), "rb").read()), dtype=torch.float32).reshape(N, T, d)
    targets = torch.frombuffer(bytearray(open(os.path.join(work, "targets.f32"), "rb").read()), dtype=torch.float32).reshape(N, T, d)
    batches = [(inputs[i : i + B], targets[i : i + B]) for i in range(0, N - B + 1, B)]
    results = []
    if kind == "LINEAR":
        for threads in thread_counts:
            torch.set_num_threads(threads)
            start = time.perf_counter()
            loss = linear_fit(inputs.reshape(-1, d), targets.reshape(-1, d), 1e-4)
            seconds = time.perf_counter() - start
            results.append({"threads": threads, "seconds": seconds, "tokensPerSecond": N * T / seconds, "losses": [loss]})
        steps = 0
    for threads in thread_counts if kind != "LINEAR" else []:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = Replacement(kind, meta, read_safetensors(os.path.join(work, "init.safetensors")))
        optimizer = torch.optim.AdamW(model.parameters(), lr=meta["learningRate"], weight_decay=meta["weightDecay"], eps=1e-8)
        losses = []
        start = None
        for step in range(warmup + steps):
            if step == warmup:
                start = time.perf_counter()
            x, y = batches[step % len(batches)]
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), meta["gradClip"])
            optimizer.step()
            losses.append(float(loss))
        seconds = time.perf_counter() - start
        results.append({"threads": threads, "seconds": seconds, "tokensPerSecond": steps * B * T / seconds, "losses": losses})
    best = max(results, key=lambda r: r["tokensPerSecond"])
    print(json.dumps({"torch": torch.__version__, "best": best, "all": [{k: r[k] for k in ("threads", "tokensPerSecond")} for r in results],
                      "maxRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
