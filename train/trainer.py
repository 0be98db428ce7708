"""Training: a handful of plain functions (``train_one_epoch``, ``evaluate``, ``fit``)."""

from __future__ import annotations

import csv
import dataclasses
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from segrt.datasets.camvid import CLASSES, PALETTE, VOID, CamVid
from segrt.metrics import ConfusionMatrix
from segrt.preprocess import Preprocess, Preprocessor
from segrt.train import checkpoint
from segrt.train.config import TrainConfig
from segrt.train.data import CamVidTrain, enet_weights
from segrt.train.models import build_model


def train_one_epoch(net, loader, loss_fn, opt, sched, epoch: int) -> float:
    net.train()
    total, n = 0.0, 0
    bar = tqdm(loader, desc=f"epoch {epoch}", unit="batch", leave=False)
    for x, y in bar:
        loss = loss_fn(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() * len(x)
        n += len(x)
        bar.set_postfix(loss=f"{total / n:.3f}", lr=f"{sched.get_last_lr()[0]:.2e}")
    return total / max(n, 1)


@torch.no_grad()
def evaluate(net, ds: CamVid, spec: Preprocess) -> dict:
    """Whole frames through the shared preprocessing; scored at label resolution."""
    net.eval()
    prep = Preprocessor(spec)
    cm = ConfusionMatrix(len(CLASSES))
    for i in tqdm(range(len(ds)), desc=f"eval {ds.split}", unit="frame", leave=False):
        image, label = ds.read(i)
        x = torch.from_numpy(prep(image)[None])
        logits = F.interpolate(net(x), size=label.shape, mode="bilinear", align_corners=False)
        cm.update(label, logits.argmax(1)[0].numpy())
    return cm.compute()


def poly_with_warmup(total_steps: int, warmup_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return (1 - (step - warmup_steps) / max(1, total_steps - warmup_steps)) ** 0.9
    return factor


def fit(cfg: TrainConfig, data_root: Path, out_dir: Path, resume: Path | None = None,
        stop_after: int | None = None) -> dict:
    """Train ``cfg.model`` on CamVid train, evaluate on val; writes into ``out_dir``:
    ``last.pt``, ``best.pt`` (by val mIoU) and ``metrics.csv``. Returns the best metrics.

    ``resume`` continues exactly (weights, optimiser, schedule, random state) from a
    ``last.pt``; ``stop_after`` ends after that epoch while keeping the schedule of
    ``cfg.epochs``, for time-boxed sessions that resume later.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    spec = Preprocess(cfg.input_width, cfg.input_height)
    train_set = CamVidTrain(CamVid(data_root, "train"), spec, cfg.scale_range, cfg.seed)
    val = CamVid(data_root, "val")
    loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True,
                                         drop_last=True, num_workers=0)
    weights = None
    if cfg.class_weighting == "enet":
        weights = torch.from_numpy(enet_weights(train_set.class_frequencies(len(CLASSES))))
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, ignore_index=VOID)

    net = build_model(cfg.model, num_classes=len(CLASSES))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, poly_with_warmup(steps, cfg.warmup_epochs * len(loader)))

    start, best = 1, {"miou": -math.inf}
    if resume is not None:
        state = checkpoint.load(resume)
        net.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        train_set.rng.bit_generator.state = state["numpy_rng"]
        start, best = state["epoch"] + 1, state["best"]

    meta = {"model": cfg.model, "classes": list(CLASSES), "palette": [list(c) for c in PALETTE],
            "preprocess": spec.to_dict(), "config": dataclasses.asdict(cfg),
            "trained_on": "CamVid train (367 frames)", "torch_version": torch.__version__}
    log_path = out_dir / "metrics.csv"
    new_log = not log_path.exists() or resume is None
    with open(log_path, "w" if new_log else "a", newline="") as log_file:
        log = csv.writer(log_file)
        if new_log:
            log.writerow(["epoch", "train_loss", "lr", "val_miou", "val_pixel_accuracy", "seconds"])
        for epoch in range(start, min(cfg.epochs, stop_after or cfg.epochs) + 1):
            t0 = time.perf_counter()
            loss = train_one_epoch(net, loader, loss_fn, opt, sched, epoch)
            metrics = None
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                metrics = evaluate(net, val, spec)
                if metrics["miou"] > best["miou"]:
                    best = {**metrics, "epoch": epoch}
                    checkpoint.save(out_dir / "best.pt", {**meta, "state_dict": net.state_dict(),
                                                          "epoch": epoch, "metrics": metrics})
            seconds = time.perf_counter() - t0
            log.writerow([epoch, f"{loss:.4f}", f"{sched.get_last_lr()[0]:.3e}",
                          f"{metrics['miou']:.4f}" if metrics else "",
                          f"{metrics['pixel_accuracy']:.4f}" if metrics else "", f"{seconds:.1f}"])
            log_file.flush()
            checkpoint.save(out_dir / "last.pt", {
                **meta, "state_dict": net.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(),
                "numpy_rng": train_set.rng.bit_generator.state, "epoch": epoch, "best": best})
            shown = f" val mIoU {metrics['miou']:.3f}" if metrics else ""
            tqdm.write(f"epoch {epoch}/{cfg.epochs} loss {loss:.3f}{shown} ({seconds:.0f}s)")
    return best
