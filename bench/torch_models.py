"""PyTorch eager versions of the gpu-nids models, timed as a speed yardstick.

Times whole training steps (forward, backward, optimizer) on synthetic data for the
VAE and DOC-IDS as docs define them, on the CPU by default, and prints one JSON line
per (model, batch): {"model", "batch", "samples_per_s", "ms_per_step", "threads"}.
DOC-IDS counts reference + target samples, as `gpu-nids bench train` does.

    python3 bench/torch_models.py --model vae --batch 64 --steps 5 --threads 2
"""
import argparse
import json
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F


def vae_parts():
    enc = nn.Sequential(
        nn.Conv2d(1, 32, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(64, 128, 4, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(),
    )
    heads = nn.Linear(8192, 64)  # mu and log-variance side by side (2 x 32)
    dec_in = nn.Linear(32, 8192)
    dec = nn.Sequential(
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),
    )
    return nn.ModuleList([enc, heads, dec_in, dec])


def vae_loss(m, x):
    enc, heads, dec_in, dec = m
    mu, logvar = heads(enc(x)).chunk(2, dim=1)
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    logits = dec(F.relu(dec_in(z)).view(-1, 128, 8, 8))
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = -0.5 * (1 + logvar - mu * mu - logvar.exp()).sum()
    return (rec + kl) / x.shape[0]


def doc_parts(classes):
    g = nn.Sequential(
        nn.Conv1d(1, 32, 6, padding=5), nn.ReLU(), nn.BatchNorm1d(32), nn.MaxPool1d(2),
        nn.Conv1d(32, 64, 6, padding=5), nn.ReLU(), nn.BatchNorm1d(64), nn.MaxPool1d(2),
        nn.Flatten(),
        nn.Linear(64 * 83, 1024), nn.BatchNorm1d(1024), nn.ReLU(),
        nn.Linear(1024, 256), nn.BatchNorm1d(256),
    )
    h = nn.Linear(256, classes)
    ae = nn.Sequential(
        nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 256),
    )
    return nn.ModuleList([g, h, ae])


def doc_loss(m, x_ref, y_ref, x_tgt):
    g, h, ae = m
    l_d = F.cross_entropy(h(g(x_ref)), y_ref)
    feat = g(x_tgt)
    out = h(feat)
    n, k = out.shape
    l_c = (out - out.mean(0)).pow(2).sum() * (n / (n - 1)) ** 2 / (n * k)
    l_r = F.mse_loss(ae(feat), feat)
    return l_d + 0.1 * l_c + 10.0 * l_r


def timed(step, warmup, steps):
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def run(model, batch, warmup, steps, classes=20):
    gen = torch.Generator().manual_seed(0)
    if model == "vae":
        m = vae_parts()
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        x = torch.randint(0, 256, (batch, 1, 64, 64), generator=gen).float() / 255
        loss = lambda: vae_loss(m, x)
        per_step = batch
    else:
        m = doc_parts(classes)
        # Adam, as `gpu-nids bench train --model doc-ids` times it.
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        xr = torch.randint(0, 256, (batch, 1, 320), generator=gen).float() / 255
        yr = torch.randint(0, classes, (batch,), generator=gen)
        xt = torch.randint(0, 256, (batch, 1, 320), generator=gen).float() / 255
        loss = lambda: doc_loss(m, xr, yr, xt)
        per_step = 2 * batch

    def step():
        opt.zero_grad(set_to_none=True)
        loss().backward()
        opt.step()

    secs = timed(step, warmup, steps)
    return dict(model=model, batch=batch, samples_per_s=per_step / secs,
                ms_per_step=secs * 1e3, threads=torch.get_num_threads())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["vae", "doc-ids"], action="append")
    ap.add_argument("--batch", type=int, action="append")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for model in a.model or ["vae", "doc-ids"]:
        for batch in a.batch or [64, 256]:
            print(json.dumps(run(model, batch, a.warmup, a.steps)))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
