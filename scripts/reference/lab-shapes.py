"""Shapes World reading lab in PyTorch: vista's projector + LM, trained on the real samples and the frozen tower's
features exported by `scripts/probe-reading.mjs` (option "export"), so that recipe ideas for the instruct stage
can be tried several times faster than in vista's own engine.

Not part of vista (no Python in the product): like recall-toy.py it runs on Debian's python3-torch. Install
libopenblas0-pthread with it: python3-torch alone may bring only the reference BLAS (libblas3, ~6 GFLOP/s, so a step
takes minutes). On an Intel machine of this kind OpenBLAS detects the CPU as "Prescott" and runs its slowest kernels
(~30 GFLOP/s on two threads); run it there with OPENBLAS_CORETYPE=SkylakeX (~200 GFLOP/s). On AMD EPYC it detects
the CPU itself (~140 GFLOP/s on one thread). The architecture follows vista's: idefics3 pixel shuffle + a
linear projector, a llama decoder (RMSNorm, RoPE on adjacent pairs, grouped KV heads, SwiGLU), AdamW
(0.9, 0.95), weight decay 0.05 on matrices, clipping at 1, warmup + cosine to lr/20. Loss on assistant tokens.

usage: OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 scripts/reference/lab-shapes.py '{"data":"/tmp/lab1","tasks":["colour","shape"]}'
options: data, tasks (first-question tasks to keep; default all), steps, bs, lr, lrProj, warmup, seed, evalEvery,
  layers, heads, kv, E (LM width), ff, words (weight of word-aligned oracle tokens: add this multiple of the sum of
  the LM's own embeddings of each token's object words), align (weight of the word-alignment loss, vista's
  src/train/wordalign.ts), oracle (the projector reads, instead of the tower's features, each token's multi-hot of
  its object's words: a perfect tower), nTrain, maxLen (drop longer samples, e.g. those declaring tools), scale (another
  pixel-shuffle factor than the export's, e.g. 3: 16 image tokens instead of 36; not with words/align/oracle).
  digitIds (the token ids of 0–9: also report, per task, the share of leading digits of numbers predicted right).
prints per eval: step, seconds, val answer loss, image gap (loss with another sample's image minus with its own),
and per task the share of answers exactly right under teacher forcing.
"""
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

A = dict(data='/tmp/lab1', tasks=None, steps=600, bs=32, lr=2e-3, lrProj=2e-3, warmup=30, seed=1, evalEvery=100, layers=4,
         heads=8, kv=4, E=256, ff=704, words=0.0, align=0.0, oracle=False, nTrain=0, threads=2, maxLen=0, scale=0, qfirst=False, imEnd=5, turnWeight=0.0, digitIds=None)
A.update(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
print(json.dumps(A), flush=True)
torch.manual_seed(A['seed'])
torch.set_num_threads(A['threads'])

D = json.load(open(f"{A['data']}/data.json"))
P, VE, V, N = D['P'], D['E'], D['vocab'], D['N']
G, Gt = int(math.isqrt(P)), int(math.isqrt(N))
N0 = N
if A['scale']:  # another pixel-shuffle factor: fewer, larger image tokens (each sample's image run is re-cut)
    Gt, N = G // A['scale'], (G // A['scale']) ** 2
s = G // Gt


def question_first(x):
    """Move the image (its wrapper tokens and slots) from the start of the first user turn to its end, just
    before the turn's end token: the image tokens then see the question."""
    ids, learn = x['ids'], x['learn']
    a = ids.index(-1) - 2  # <fake_token_around_image><global-img> before the slots
    b = a + 2 + ids.count(-1) + 1  # slots and the closing wrapper
    end = next(i for i in range(b, len(ids)) if ids[i] == A['imEnd'])
    perm = list(range(a)) + list(range(b, end)) + list(range(a, b)) + list(range(end, len(ids)))
    return dict(x, ids=[ids[i] for i in perm], learn=[learn[i] for i in perm])


def recut(x):
    ids, learn, out_i, out_l, i = x['ids'], x['learn'], [], [], 0
    while i < len(ids):
        if ids[i] < 0 and ids[i:i + N0] == [-1] * N0:
            out_i += [-1] * N
            out_l += [0] * N
            i += N0
        else:
            out_i.append(ids[i])
            out_l.append(learn[i])
            i += 1
    return dict(x, ids=out_i, learn=out_l)


def load(part):
    d = D[part]
    if A['scale']:
        d = dict(d, samples=[recut(x) for x in d['samples']])
    if A['qfirst']:
        d = dict(d, samples=[question_first(x) for x in d['samples']])
    f = np.fromfile(f"{A['data']}/{part}.f32", dtype=np.float32).reshape(len(d['images']), G, G, VE)
    # idefics3 pixel shuffle: token (r, c) holds the s×s patches under it
    f = f.reshape(-1, Gt, s, Gt, s, VE).transpose(0, 1, 3, 2, 4, 5).reshape(-1, N, s * s * VE)
    bag = torch.zeros(len(d['images']) if A['words'] or A['align'] or A['oracle'] else 1, N, V)
    for i, toks in enumerate(d['words'] if A['words'] or A['align'] or A['oracle'] else []):
        for j, ws in enumerate(toks):
            for w in ws:
                bag[i, j, w] += 1
    S = [x for x in d['samples'] if (A['tasks'] is None or (x['tasks'] and x['tasks'][0] in A['tasks']))
         and (not A['maxLen'] or len(x['ids']) <= A['maxLen'])]
    return torch.from_numpy(np.ascontiguousarray(f)), bag, S


FT, BT, ST = load('train')
FV, BV, SV = load('val')
if A['nTrain']:
    ST = ST[:A['nTrain']]
print(json.dumps({'train': len(ST), 'val': len(SV), 'meanTokens': round(sum(len(x['ids']) for x in ST) / len(ST), 1)}), flush=True)


def collate(samples):
    T = max(len(x['ids']) for x in samples)
    ids = torch.zeros(len(samples), T, dtype=torch.long)
    isimg = torch.zeros(len(samples), T, dtype=torch.bool)
    tgt = torch.full((len(samples), T), -100, dtype=torch.long)
    img = []
    for b, x in enumerate(samples):
        L = len(x['ids'])
        t = torch.tensor(x['ids'])
        isimg[b, :L] = t < 0
        ids[b, :L] = t.clamp(min=0)
        learn = torch.tensor(x['learn'], dtype=torch.bool)
        tgt[b, :L - 1] = torch.where(learn[1:], t[1:], torch.tensor(-100))
        img += x['img']
    # per-answer weights: each target token weighs 1/len(its answer)^turnWeight (0: every token alike)
    w = torch.zeros(len(samples), T)
    for b in range(len(samples)):
        m = (tgt[b] >= 0).tolist()
        i = 0
        while i < T:
            if m[i]:
                j = i
                while j < T and m[j]:
                    j += 1
                w[b, i:j] = 1.0 / (j - i) ** A['turnWeight']
                i = j
            else:
                i += 1
    return ids, isimg, tgt, torch.tensor(img), w / w.sum()


class RMSNorm(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(n))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.w


def lin(i, o, std):
    m = torch.nn.Linear(i, o, bias=False)
    torch.nn.init.normal_(m.weight, std=std)
    return m


def rope(x):
    """x (B, T, H, Dh): adjacent pairs, base 10000 (llama.cpp 'norm')."""
    T, Dh = x.shape[1], x.shape[3]
    ang = torch.arange(T).float()[:, None] * 10000 ** (-torch.arange(0, Dh, 2).float() / Dh)[None]
    c, s_ = ang.cos()[None, :, None], ang.sin()[None, :, None]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x0 * c - x1 * s_, x0 * s_ + x1 * c], -1).flatten(-2)


E, H, KV = A['E'], A['heads'], A['kv']
Dh = E // H


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        out = 0.02 / math.sqrt(2 * A['layers'])
        self.n1, self.n2 = RMSNorm(E), RMSNorm(E)
        self.q, self.k, self.v, self.o = lin(E, E, .02), lin(E, KV * Dh, .02), lin(E, KV * Dh, .02), lin(E, E, out)
        self.g, self.u, self.d = lin(E, A['ff'], .02), lin(E, A['ff'], .02), lin(A['ff'], E, out)

    def forward(self, x, mask):
        B, T, _ = x.shape
        h = self.n1(x)
        q = rope(self.q(h).view(B, T, H, Dh)).transpose(1, 2)
        k = rope(self.k(h).view(B, T, KV, Dh)).transpose(1, 2).repeat_interleave(H // KV, 1)
        v = self.v(h).view(B, T, KV, Dh).transpose(1, 2).repeat_interleave(H // KV, 1)
        a = (q @ k.transpose(-1, -2) / math.sqrt(Dh)).masked_fill(mask, float('-inf')).softmax(-1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(B, T, E))
        h = self.n2(x)
        return x + self.d(F.silu(self.g(h)) * self.u(h))


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = lin(V if A['oracle'] else s * s * VE, E, .02)
        self.emb = torch.nn.Embedding(V, E)
        torch.nn.init.normal_(self.emb.weight, std=.02)
        self.blocks = torch.nn.ModuleList(Block() for _ in range(A['layers']))
        self.norm = RMSNorm(E)
        self.out = lin(E, V, .02)

    def forward(self, ids, isimg, feats, bag):
        img = self.proj(bag if A['oracle'] else feats)  # (images, N, E)
        aux = None
        if A['align']:
            logits = img.reshape(-1, E) @ self.emb.weight.detach().t()
            b = bag.reshape(-1, V)
            rows = b.sum(-1) > 0
            aux = -(F.log_softmax(logits[rows], -1) * b[rows]).sum() / b[rows].sum()
        if A['words']:
            img = img + A['words'] * (bag @ self.emb.weight)
        x = self.emb(ids)
        x = x.masked_scatter(isimg[..., None], img.reshape(-1, E).to(x.dtype))
        T = ids.shape[1]
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        for blk in self.blocks:
            x = blk(x, mask)
        return self.out(self.norm(x)), aux


model = Model()
proj_params = list(model.proj.parameters())
lm_params = [p for n, p in model.named_parameters() if not n.startswith('proj.')]
groups = []
for ps, lr in ((proj_params, A['lrProj']), (lm_params, A['lr'])):
    groups.append(dict(params=[p for p in ps if p.ndim >= 2], weight_decay=0.05, base=lr))
    groups.append(dict(params=[p for p in ps if p.ndim < 2], weight_decay=0.0, base=lr))
opt = torch.optim.AdamW([dict(params=g['params'], weight_decay=g['weight_decay'], lr=g['base']) for g in groups], betas=(0.9, 0.95), eps=1e-8)


def lr_at(step, base):
    if step <= A['warmup']:
        return base * step / A['warmup']
    p = (step - A['warmup']) / max(1, A['steps'] - A['warmup'])
    lo = base / 20
    return lo + (base - lo) * 0.5 * (1 + math.cos(math.pi * p))


def evaluate(step, t0):
    model.eval()
    right, n = {}, {}
    digits = set(A['digitIds'] or [])
    lt = lo = 0.0
    nb = 0
    with torch.no_grad():
        for i in range(0, len(SV), 64):
            ch = SV[i:i + 64]
            ids, isimg, tgt, img, _ = collate(ch)
            logits, _ = model(ids, isimg, FV[img], BV[img] if A['words'] or A['align'] or A['oracle'] else None)
            lt += F.cross_entropy(logits.reshape(-1, V), tgt.reshape(-1)).item()
            other = torch.cat([img[1:], img[:1]])
            lo += F.cross_entropy(model(ids, isimg, FV[other], BV[other] if A['words'] or A['align'] or A['oracle'] else None)[0].reshape(-1, V), tgt.reshape(-1)).item()
            nb += 1
            pred = logits.argmax(-1)
            for b, x in enumerate(ch):
                pos = (tgt[b] >= 0).nonzero().flatten().tolist()
                runs, prev = [], -2
                for p_ in pos:
                    if p_ != prev + 1:
                        runs.append(True)
                    if pred[b, p_] != tgt[b, p_]:
                        runs[-1] = False
                    if digits and int(tgt[b, p_]) in digits and int(ids[b, p_]) not in digits:  # leading digit of a number
                        k = (x['tasks'][len(runs) - 1] if len(runs) - 1 < len(x['tasks']) else '?') + ':lead'
                        right[k] = right.get(k, 0) + int(pred[b, p_] == tgt[b, p_])
                        n[k] = n.get(k, 0) + 1
                    prev = p_
                for t, ok in enumerate(runs):
                    task = x['tasks'][t] if t < len(x['tasks']) else '?'
                    right[task] = right.get(task, 0) + int(ok)
                    n[task] = n.get(task, 0) + 1
    model.train()
    acc = {t: round(right[t] / n[t], 3) for t in sorted(n)}
    print(json.dumps(dict(step=step, seconds=round(time.time() - t0), loss=round(lt / nb, 3), gap=round((lo - lt) / nb, 3), **acc)), flush=True)


rng = np.random.default_rng(A['seed'])
order, at = rng.permutation(len(ST)), 0
t0 = time.time()
ema = None
for step in range(1, A['steps'] + 1):
    if at + A['bs'] > len(order):
        order, at = rng.permutation(len(ST)), 0
    batch = [ST[j] for j in order[at:at + A['bs']]]
    at += A['bs']
    ids, isimg, tgt, img, wt = collate(batch)
    for g, pg in zip(groups, opt.param_groups):
        pg['lr'] = lr_at(step, g['base'])
    logits, aux = model(ids, isimg, FT[img], BT[img] if A['words'] or A['align'] or A['oracle'] else None)
    loss = (F.cross_entropy(logits.reshape(-1, V), tgt.reshape(-1), reduction='none') * wt.reshape(-1)).sum()
    total = loss + A['align'] * aux if aux is not None else loss
    opt.zero_grad()
    total.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
    if step % 50 == 0:
        print(f"step {step} train loss {ema:.3f} {(time.time() - t0) / step:.3f} s/step" + (f" align {aux.item():.3f}" if aux is not None else ''), flush=True)
    if step % A['evalEvery'] == 0 or step == A['steps']:
        evaluate(step, t0)
