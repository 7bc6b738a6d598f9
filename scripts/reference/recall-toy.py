"""Associative-recall toy in PyTorch: an independent check of how fast a llama-style decoder learns the lookup a
Shapes World question needs ("what colour is the <shape>?" → find the object, read its colour).

Not part of vista (no Python in the product): it runs on Debian's python3-torch and exists so that a learning
dynamic seen in vista's own engine can be told apart from an engine bug, and so that recipe ideas can be tried
in seconds. Findings are in the README ("The bundled model").

A sequence holds n objects, then nq questions [Q, (filler…), shape, (filler…), →] each answered by that
object's colour (16 colours, 16 shapes). Loss on the answers only. Object forms (`obj`):
  text   three tokens per object: colour, shape, separator (needs a previous-token + induction circuit)
  words  one token per object: the sum of the LM's own embeddings of its colour and shape
  proj   one token per object: a fresh MLP projector on a two-hot of (colour, shape), like image features
`aux` > 0 (proj only) adds the word-alignment loss: MSE of the projected token to the (detached) sum of its
words' embeddings. `fill` puts that many random filler tokens around the question's shape word; `gap` that many
between the objects and the questions. `tiedqk` 1 starts every block's key projection equal to its query projection
(q·k is a content match at step 0); `base` is the RoPE base. tiedqk did not speed the lookup up (seeds 1, 2 with
fill 6: no jump by step 1 100–1 150, against about 1 050 on seed 2 without it); gap 150 is slow here (~2 s/step)
and was not run to the end.

usage: /usr/bin/python3 scripts/reference/recall-toy.py '{"obj":"proj","fill":6,"aux":1}'
prints every 50 steps: step, loss, accuracy of the last question.
"""
import json
import math
import sys

import torch

A = dict(steps=1500, bs=32, lr=1e-3, layers=2, E=128, H=4, n=5, nq=1, distinct=0, fill=0, obj='proj', aux=0.0, seed=1, tiedqk=0, base=10000.0, gap=0)
A.update(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
print(A, flush=True)
torch.manual_seed(A['seed'])
torch.set_num_threads(1)
V, E, H, N = 64, A['E'], A['H'], A['n']
D = E // H
SEP, Q, ARROW, FILL0 = 32, 33, 34, 40  # colours 0–15, shapes 16–31, filler 40–63


class RMSNorm(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(n))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.w


def rope(x):
    """x (B, T, H, D); adjacent pairs, base 10000 (llama.cpp 'norm')."""
    T, Dd = x.shape[1], x.shape[3]
    ang = torch.arange(T).float()[:, None] * A['base'] ** (-torch.arange(0, Dd, 2).float() / Dd)[None]
    c, s = ang.cos()[None, :, None], ang.sin()[None, :, None]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], -1).flatten(-2)


def linear(i, o, std):
    lin = torch.nn.Linear(i, o, bias=False)
    torch.nn.init.normal_(lin.weight, std=std)
    return lin


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        out = 0.02 / math.sqrt(2 * A['layers'])
        self.n1, self.n2 = RMSNorm(E), RMSNorm(E)
        self.q, self.k, self.v, self.o = linear(E, E, 0.02), linear(E, E, 0.02), linear(E, E, 0.02), linear(E, E, out)
        self.g, self.u, self.d = linear(E, 3 * E, 0.02), linear(E, 3 * E, 0.02), linear(3 * E, E, out)
        if A['tiedqk']:  # queries and keys start equal: q·k is a content match from step 0
            with torch.no_grad():
                self.k.weight.copy_(self.q.weight)

    def forward(self, x):
        B, T, _ = x.shape
        h = self.n1(x)
        q, k, v = (rope(self.q(h).view(B, T, H, D)), rope(self.k(h).view(B, T, H, D)), self.v(h).view(B, T, H, D))
        s = q.transpose(1, 2) @ k.permute(0, 2, 3, 1) / math.sqrt(D)
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float('-inf'))
        x = x + self.o((s.softmax(-1) @ v.transpose(1, 2)).transpose(1, 2).reshape(B, T, E))
        h = self.n2(x)
        return x + self.d(torch.nn.functional.silu(self.g(h)) * self.u(h))


class LM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(V, E)
        torch.nn.init.normal_(self.emb.weight, std=0.02)
        self.proj = torch.nn.Sequential(torch.nn.Linear(V, E), torch.nn.GELU(), torch.nn.Linear(E, E))
        self.blk = torch.nn.ModuleList([Block() for _ in range(A['layers'])])
        self.norm, self.out = RMSNorm(E), linear(E, V, 0.02)
        self.aux = torch.zeros(())

    def forward(self, ids):
        x = self.emb(ids)
        if A['obj'] != 'text':
            words = x[:, 0:3 * N:3] + x[:, 1:3 * N:3]  # (B, n, E)
            objs = words
            if A['obj'] == 'proj':
                hot = torch.nn.functional.one_hot(ids[:, 0:3 * N:3], V).float() + torch.nn.functional.one_hot(ids[:, 1:3 * N:3], V).float()
                objs = self.proj(hot)
                self.aux = ((objs - words.detach()) ** 2).sum(-1).mean()
            x = torch.cat([objs, x[:, 3 * N:]], 1)
        for b in self.blk:
            x = b(x)
        return self.out(self.norm(x))


g = torch.Generator().manual_seed(A['seed'])


def batch():
    B = A['bs']
    shapes = torch.stack([torch.randperm(16, generator=g)[:N] for _ in range(B)]) + 16
    colours = torch.randint(0, 16, (B, N), generator=g)
    ids = torch.stack([colours, shapes, torch.full((B, N), SEP)], -1).reshape(B, 3 * N)
    if A['gap']:  # filler between the objects and the questions: the distance a tool declaration or earlier turns put there
        ids = torch.cat([ids, torch.randint(FILL0, V, (B, A['gap']), generator=g)], 1)
    order = torch.stack([torch.randperm(N, generator=g) for _ in range(B)])
    answers = []
    for j in range(A['nq']):
        q = order[:, j] if A['distinct'] else torch.randint(0, N, (B,), generator=g)
        a = colours.gather(1, q[:, None])
        before = torch.randint(0, A['fill'] + 1, (1,), generator=g).item()
        fill = lambda k: torch.randint(FILL0, V, (B, k), generator=g)
        ids = torch.cat([ids, torch.full((B, 1), Q), fill(before), shapes.gather(1, q[:, None]), fill(A['fill'] - before), torch.full((B, 1), ARROW), a], 1)
        answers.append(a)
    return ids, torch.cat(answers, 1)


m = LM()
ps = list(m.parameters())
opt = torch.optim.AdamW([{'params': [p for p in ps if p.ndim >= 2], 'weight_decay': 0.05},
                         {'params': [p for p in ps if p.ndim < 2], 'weight_decay': 0}], lr=A['lr'], betas=(0.9, 0.95))
L = 4 + A['fill']  # tokens per question block
for step in range(1, A['steps'] + 1):
    ids, ans = batch()
    out = m(ids[:, :-1])
    at = out[:, out.shape[1] - L * A['nq'] + L - 1::L]  # the → of each question block
    loss = torch.nn.functional.cross_entropy(at.reshape(-1, V), ans.reshape(-1))
    total = loss + A['aux'] * m.aux if A['obj'] == 'proj' and A['aux'] else loss
    opt.zero_grad()
    total.backward()
    torch.nn.utils.clip_grad_norm_(ps, 1.0)
    opt.step()
    if step % 50 == 0:
        print(step, round(loss.item(), 3), round((at[:, -1].argmax(-1) == ans[:, -1]).float().mean().item(), 2), flush=True)
