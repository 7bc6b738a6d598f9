"""Shapes World tower lab in PyTorch: how fast does a ViT like vista's learn, per patch, what object lies there?

Not part of vista (no Python in the product); a diagnostic beside lab-shapes.py, on Debian's python3-torch
(run with OPENBLAS_CORETYPE=SkylakeX, see lab-shapes.py). It trains vista's tower shape (patch 8 at 96 px,
width 128, 4 pre-LN blocks, 4 heads, GELU-tanh MLP 512, learned positions) with the dense per-patch loss of
src/train/dense.ts (linear heads: colour, shape, size, digit, centre, box) on the images and scenes exported by
`scripts/probe-reading.mjs` ("export"), and reports on val, per object patch, how often the heads are right —
the information the LM needs in each image token.

usage: OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 scripts/reference/lab-tower.py '{"steps":400}'
options: data, steps, bs, lr, warmup, seed, evalEvery, objWeight (weight of object patches in the class losses;
  1 = a plain mean over all patches as dense.ts does), width, blocks, patch, nTrain
"""
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

A = dict(data='/tmp/lab1', steps=400, bs=32, lr=2e-3, warmup=20, seed=1, evalEvery=100, objWeight=1.0, width=128, blocks=4,
         heads=4, patch=8, size=96, nTrain=8000, threads=2)
A.update(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
print(json.dumps(A), flush=True)
torch.manual_seed(A['seed'])
torch.set_num_threads(A['threads'])
D = json.load(open(f"{A['data']}/data.json"))
S, p = A['size'], A['patch']
G = S // p
COL = ['red', 'green', 'blue', 'yellow', 'purple', 'orange']
SHP = ['circle', 'square', 'triangle', 'star']


def pixels(files):
    out = np.zeros((len(files), 3, S, S), dtype=np.float32)
    for i, f in enumerate(files):
        im = Image.open(f).convert('RGB').resize((S, S), Image.BILINEAR)
        out[i] = (np.asarray(im, dtype=np.float32) / 255 - 0.5).transpose(2, 0, 1) / 0.5
    return torch.from_numpy(out)


def targets(scenes):
    """per patch: colour, shape, size, digit classes (0 = background), centre flag, box (0–1), owned mask."""
    n = len(scenes)
    t = {k: torch.zeros(n, G * G, dtype=torch.long) for k in ('colour', 'shape', 'size', 'digit', 'centre')}
    box = torch.zeros(n, G * G, 4)
    owned = torch.zeros(n, G * G, dtype=torch.bool)
    for b, objs in enumerate(scenes):
        for k, o in enumerate(objs):
            x0, y0, x1, y1 = (v / 1000 for v in o['box1000'])
            cells = [(r, c) for r in range(G) for c in range(G) if x0 <= (c + .5) / G <= x1 and y0 <= (r + .5) / G <= y1]
            cr, cc = min(G - 1, int((y0 + y1) / 2 * G)), min(G - 1, int((x0 + x1) / 2 * G))
            if (cr, cc) not in cells:
                cells.append((cr, cc))
            t['centre'][b, cr * G + cc] = 1
            for r, c in cells:
                j = r * G + c
                owned[b, j] = True
                box[b, j] = torch.tensor([x0, y0, x1, y1])
                if o['shape'] == 'digit':
                    t['colour'][b, j], t['shape'][b, j], t['digit'][b, j] = 7, 5, 1 + o['digit']
                else:
                    t['colour'][b, j], t['shape'][b, j] = 1 + COL.index(o['colour']), 1 + SHP.index(o['shape'])
                    t['size'][b, j] = 1 + (o['size'] == 'large')
    return t, box, owned


NT = min(A['nTrain'], len(D['train']['images']))
t0 = time.time()
XT, XV = pixels(D['train']['images'][:NT]), pixels(D['val']['images'])
TT, TV = targets(D['train']['scenes'][:NT]), targets(D['val']['scenes'])
print(json.dumps({'train': NT, 'val': len(XV), 'loadSeconds': round(time.time() - t0)}), flush=True)
W, H = A['width'], A['heads']


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = torch.nn.LayerNorm(W, eps=1e-6), torch.nn.LayerNorm(W, eps=1e-6)
        self.qkv, self.o = torch.nn.Linear(W, 3 * W), torch.nn.Linear(W, W)
        self.up, self.down = torch.nn.Linear(W, 4 * W), torch.nn.Linear(4 * W, W)
        for m in (self.qkv, self.o, self.up, self.down):
            torch.nn.init.normal_(m.weight, std=.02)
            torch.nn.init.zeros_(m.bias)

    def forward(self, x):
        B, T, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, H, W // H).permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-1, -2)) / math.sqrt(W // H)).softmax(-1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(B, T, W))
        return x + self.down(F.gelu(self.up(self.ln2(x)), approximate='tanh'))


class Tower(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = torch.nn.Linear(3 * p * p, W)
        self.pos = torch.nn.Parameter(torch.randn(G * G, W) * .02)
        self.blocks = torch.nn.ModuleList(Block() for _ in range(A['blocks']))
        self.ln = torch.nn.LayerNorm(W, eps=1e-6)
        self.heads = torch.nn.ModuleDict({'colour': torch.nn.Linear(W, 8), 'shape': torch.nn.Linear(W, 6), 'size': torch.nn.Linear(W, 3),
                                          'digit': torch.nn.Linear(W, 11), 'centre': torch.nn.Linear(W, 2), 'box': torch.nn.Linear(W, 4)})

    def forward(self, px):
        B = px.shape[0]
        x = px.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 1, 4, 5).reshape(B, G * G, 3 * p * p)
        x = self.patch(x) + self.pos
        for b in self.blocks:
            x = b(x)
        return self.ln(x)


def loss_of(model, f, t, box, owned):
    wt = torch.where(owned, torch.tensor(A['objWeight']), torch.tensor(1.0)).reshape(-1)
    wt = wt / wt.mean()
    L = 0
    for k in ('colour', 'shape', 'size', 'digit', 'centre'):
        L = L + (F.cross_entropy(model.heads[k](f).reshape(-1, model.heads[k].out_features), t[k].reshape(-1), reduction='none') * wt).mean()
    if owned.any():
        L = L + 5 * (model.heads['box'](f)[owned] - box[owned]).abs().mean()
    return L


model = Tower()
opt = torch.optim.AdamW([dict(params=[q for q in model.parameters() if q.ndim >= 2], weight_decay=0.05),
                         dict(params=[q for q in model.parameters() if q.ndim < 2], weight_decay=0.0)], lr=A['lr'], betas=(0.9, 0.95))


def evaluate(step):
    model.eval()
    with torch.no_grad():
        f = torch.cat([model(XV[i:i + 100]) for i in range(0, len(XV), 100)])
        t, box, owned = TV
        acc = {k: round((model.heads[k](f).argmax(-1)[owned] == t[k][owned]).float().mean().item(), 3) for k in ('colour', 'shape', 'size', 'digit')}
        ctr = model.heads['centre'](f).argmax(-1)
        acc['centreF1'] = round((2 * ((ctr == 1) & (t['centre'] == 1)).sum() / ((ctr == 1).sum() + (t['centre'] == 1).sum())).item(), 3)
        acc['boxL1'] = round((model.heads['box'](f)[owned] - box[owned]).abs().mean().item() * 1000)
    model.train()
    print(json.dumps(dict(step=step, seconds=round(time.time() - t0), **acc)), flush=True)


rng = np.random.default_rng(A['seed'])
t0 = time.time()
for step in range(1, A['steps'] + 1):
    idx = torch.from_numpy(rng.integers(0, NT, A['bs']))
    lr = A['lr'] * min(1, step / A['warmup']) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / A['steps'])))
    for g in opt.param_groups:
        g['lr'] = lr
    t, box, owned = TT
    L = loss_of(model, model(XT[idx]), {k: v[idx] for k, v in t.items()}, box[idx], owned[idx])
    opt.zero_grad()
    L.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if step % 50 == 0:
        print(f'step {step} loss {L.item():.3f} {(time.time() - t0) / step:.3f} s/step', flush=True)
    if step % A['evalEvery'] == 0 or step == A['steps']:
        evaluate(step)
if A.get('save'):
    torch.save(model.state_dict(), A['save'])
if A.get('features'):  # write every exported image's patch features for lab-shapes.py (same layout as the export)
    import os
    os.makedirs(A['features'], exist_ok=True)
    model.eval()
    with torch.no_grad():
        for part in ('train', 'val'):
            files = D[part]['images']
            with open(f"{A['features']}/{part}.f32", 'wb') as fh:
                for i in range(0, len(files), 500):
                    fh.write(torch.cat([model(x) for x in pixels(files[i:i + 500]).split(100)]).numpy().astype(np.float32).tobytes())
    print(f"features written to {A['features']}", flush=True)
