"""Can a small transformer read where an object is from vista's image tokens? An independent PyTorch toy on the
image tokens (the LM's input, after the projector) of one-object scenes, exported by
`VISTA_EXPORT=/tmp/pos node scripts/probe-position.mjs` from a vista model.

Not part of vista (no Python in the product): it runs on Debian's python3-torch. The toy: the N image tokens (through
a fresh linear map, or fed as they are with `direct`), optionally `filler` random text tokens, then two query
tokens; a causal decoder (RMSNorm, SiLU MLP, learned positions unless `nopos`) predicts at the queries the leading
digit (hundreds, 0–9) of the object's centre x and y on 0–1000. `mode` "white" PCA-whitens the tokens first
(does the position signal's small share of the variance matter?).

usage: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 scripts/reference/position-toy.py '{"data":"/tmp/pos","nopos":true}'
prints every 100 steps: step, train loss, the share of val + test scenes whose leading digit of x / y is right, and
the share within ±1 of it.
"""
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

A = dict(data='/tmp/pos', mode='raw', steps=800, bs=64, lr=1e-3, seed=1, layers=2, E=128, heads=4, direct=False,
         filler=0, nopos=False)
A.update(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
print(json.dumps(A), flush=True)
torch.manual_seed(A['seed'])
torch.set_num_threads(1)


def load(split):
    meta = json.load(open(f"{A['data']}/one-{split}.json"))
    boxes = meta['boxes']
    x = np.fromfile(f"{A['data']}/one-{split}.f32", dtype=np.float32).reshape(len(boxes), meta['tokens'], meta['width'])
    y = np.array([[min(9, int((b[0][0] + b[0][2]) / 2 // 100)), min(9, int((b[0][1] + b[0][3]) / 2 // 100))] for b in boxes])
    return x, y


Xt, Yt = load('train')
N, D = Xt.shape[1:]
(xa, ya), (xb, yb) = load('val'), load('test')
Xv, Yv = np.concatenate([xa, xb]), np.concatenate([ya, yb])
if A['mode'] == 'white':
    flat = Xt.reshape(-1, D)
    mu = flat.mean(0)
    w, V = np.linalg.eigh(np.cov((flat - mu).T) + 1e-3 * np.eye(D))
    Xt, Xv = (Xt - mu) @ (V / np.sqrt(w)), (Xv - mu) @ (V / np.sqrt(w))
Xt, Xv = torch.tensor(Xt, dtype=torch.float32), torch.tensor(Xv, dtype=torch.float32)
Yt, Yv = torch.tensor(Yt), torch.tensor(Yv)
E = D if A['direct'] else A['E']
print(json.dumps({'train': len(Xt), 'eval': len(Xv), 'tokens': N, 'width': D}), flush=True)


class Norm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(E))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.w


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2 = Norm(), Norm()
        self.att = torch.nn.MultiheadAttention(E, A['heads'], batch_first=True, bias=False)
        self.ff = torch.nn.Sequential(torch.nn.Linear(E, 3 * E, bias=False), torch.nn.SiLU(), torch.nn.Linear(3 * E, E, bias=False))

    def forward(self, x, mask):
        h = self.n1(x)
        x = x + self.att(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.ff(self.n2(x))


class Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(D, E, bias=False)
        torch.nn.init.normal_(self.proj.weight, std=.02)
        self.q = torch.nn.Parameter(torch.randn(2, E) * .02)
        self.pos = torch.nn.Parameter(torch.randn(N + A['filler'] + 2, E) * .02)
        self.fill = torch.nn.Embedding(200, E)
        torch.nn.init.normal_(self.fill.weight, std=.02)
        self.blocks = torch.nn.ModuleList(Block() for _ in range(A['layers']))
        self.norm = Norm()
        self.out = torch.nn.Linear(E, 10, bias=False)

    def forward(self, x):
        B = x.shape[0]
        parts = [x if A['direct'] else self.proj(x)]
        if A['filler']:
            parts.append(self.fill(torch.randint(0, 200, (B, A['filler']))))
        h = torch.cat(parts + [self.q[None].expand(B, 2, E)], 1)
        if not A['nopos']:
            h = h + self.pos[None]
        T = h.shape[1]
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        for b in self.blocks:
            h = b(h, mask)
        return self.out(self.norm(h[:, -2:]))


model = Toy()
opt = torch.optim.AdamW(model.parameters(), lr=A['lr'], betas=(0.9, 0.95), weight_decay=0.05)
g = torch.Generator().manual_seed(A['seed'])
for step in range(1, A['steps'] + 1):
    idx = torch.randint(0, len(Xt), (A['bs'],), generator=g)
    for pg in opt.param_groups:
        pg['lr'] = A['lr'] * min(1, step / 50)
    loss = F.cross_entropy(model(Xt[idx]).reshape(-1, 10), Yt[idx].reshape(-1))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1)
    opt.step()
    if step % 100 == 0:
        with torch.no_grad():
            p = model(Xv).argmax(-1)
        acc, near = (p == Yv).float().mean(0), ((p - Yv).abs() <= 1).float().mean(0)
        print(json.dumps({'step': step, 'loss': round(loss.item(), 3), 'lead': [round(v, 2) for v in acc.tolist()],
                          'within1': [round(v, 2) for v in near.tolist()]}), flush=True)
