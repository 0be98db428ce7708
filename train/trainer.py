"""Training: a handful of plain functions (``train_one_epoch``, ``evaluate``, ``fit``)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from segrt import plots
from segrt.datasets import open_dataset
from segrt.errors import ConfigError, SegrtError
from segrt.files import shown
from segrt.metrics import ConfusionMatrix
from segrt.preprocess import Preprocess, Preprocessor
from segrt.train import checkpoint, distributed
from segrt.train.aux import WithAux
from segrt.train.batchnorm import encoder_of, frozen_bn_epochs, train_mode
from segrt.train.config import TrainConfig
from segrt.train.data import SegTrain, enet_weights
from segrt.train.distill import Consistency, Distillation, at_label_size, load_teacher, shrink
from segrt.train.losses import build_loss, median_frequency_weights
from segrt.train.models import build_model
from segrt.train.prune import narrow_head
from segrt.train.run_folder import EpochLog, check_out_dir
from segrt.train.swa import WeightAverage


def resolve_device(cfg: TrainConfig, local_rank: int = 0) -> tuple[torch.device, torch.dtype | None]:
    """(device, autocast dtype or None) for the config; impossible requests are errors."""
    cuda = torch.cuda.is_available()
    if cfg.device == "cuda" and not cuda:
        raise SegrtError("config device 'cuda': torch sees no CUDA GPU (CPU build of torch, or no "
                         "driver); use device: auto or cpu")
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and cuda)
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if cfg.amp in ("bf16", "fp16") and device.type != "cuda":
        raise SegrtError(f"config amp '{cfg.amp}' needs a CUDA device; use amp: auto or fp32 on CPU")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
    if cfg.amp == "auto" and device.type == "cuda":
        dtype = torch.bfloat16
    return device, dtype


@dataclasses.dataclass
class Parts:
    """Everything one training run is made of, built once by :func:`_build` and handed to
    each step (an epoch, the resume, the weight average) instead of a dozen arguments."""

    model: torch.nn.Module          # the network being trained (what the checkpoints hold)
    trained: torch.nn.Module        # ``model``, or it with an auxiliary head (WithAux)
    net: torch.nn.Module            # ``trained`` as the optimiser sees it (DDP-wrapped under torchrun)
    train_set: SegTrain
    loader: torch.utils.data.DataLoader
    sampler: torch.utils.data.Sampler | None
    val: object                     # the val split (a dataset reader)
    spec: Preprocess
    loss_fn: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    swa: WeightAverage
    device: torch.device
    amp_dtype: torch.dtype | None
    memory_format: torch.memory_format
    aux_weight: float = 0.0
    distill: Distillation | None = None
    consistency: Consistency | None = None
    student_crop: tuple[int, int] | None = None  # (h, w) the student sees when the teacher sees more
    bn_frozen_epochs: int = 0  # the first epochs the encoder keeps its pretrained BatchNorm statistics
    meta: dict = dataclasses.field(default_factory=dict)  # what every checkpoint of the run records


def train_one_epoch(p: Parts, epoch: int) -> float:
    train_mode(p.net, hold_encoder_bn=epoch <= p.bn_frozen_epochs)
    total, n = 0.0, 0
    bar = tqdm(p.loader, desc=f"epoch {epoch}", unit="batch", leave=False, disable=None)
    for x, y in bar:
        x = x.to(p.device, non_blocking=True, memory_format=p.memory_format)
        y = y.to(p.device, non_blocking=True)
        autocast = torch.autocast(p.device.type, p.amp_dtype) if p.amp_dtype else contextlib.nullcontext()
        with autocast:
            seen = x if p.student_crop is None else shrink(x, p.student_crop)
            out = p.net(seen)
            main, aux = out if isinstance(out, tuple) else (out, None)  # WithAux: (main, auxiliary) logits
            loss = p.loss_fn(at_label_size(main, y), y)
            if aux is not None:
                loss = loss + p.aux_weight * p.loss_fn(at_label_size(aux, y), y)
            target = None if p.distill is None else p.distill.target(x, tuple(main.shape[-2:]))
            if target is not None:
                loss = loss + p.distill.divergence(main, target)
            if p.consistency is not None:
                loss = loss + p.consistency.moved_view_loss(p.net, x, main, p.student_crop, p.distill, target)
        p.opt.zero_grad(set_to_none=True)
        p.scaler.scale(loss).backward()
        p.scaler.step(p.opt)
        p.scaler.update()
        p.sched.step()
        total, n = total + loss.item() * len(x), n + len(x)
        bar.set_postfix(loss=f"{total / n:.3f}", lr=f"{p.sched.get_last_lr()[0]:.2e}")
    return total / max(n, 1)


@torch.no_grad()
def evaluate(net, ds, spec: Preprocess, device: torch.device | str = "cpu",
             keep: int = 0) -> tuple[dict, np.ndarray, list]:
    """Whole frames through the shared preprocessing; scored at label resolution.

    Returns (metrics, confusion matrix, up to ``keep`` (image, label, prediction) samples
    spread over the split, for the prediction grid).
    """
    net.eval()
    prep = Preprocessor(spec)
    cm = ConfusionMatrix(len(ds.classes))  # ignores labels outside 0..n-1 (void/ignore)
    keep_at = set(np.linspace(0, len(ds) - 1, keep).round().astype(int)) if keep else set()
    samples = []
    for i in tqdm(range(len(ds)), desc=f"eval {ds.split}", unit="frame", leave=False, disable=None):
        image, label = ds.read(i)
        x = torch.from_numpy(prep(image)[None]).to(device)
        logits = F.interpolate(net(x).float(), size=label.shape, mode="bilinear", align_corners=False)
        pred = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
        cm.update(label, pred)
        if i in keep_at:
            samples.append((image, label, pred))
    return cm.compute(), cm.mat.copy(), samples


def lr_factor(schedule: str, total_steps: int, warmup_steps: int, hold_from: int | None = None):
    """Linear warm-up, then poly (power 0.9) or cosine decay to zero; from step ``hold_from``
    on (weight averaging), the factor stays where it was then."""
    def factor(step: int) -> float:
        if hold_from is not None:
            step = min(step, hold_from)
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        return (1 - progress) ** 0.9
    return factor


def model_preprocess(model, width: int, height: int) -> Preprocess:
    """The input spec of ``model``: its encoder's normalisation where it has an encoder of the
    contract (pretrained weights expect their own), ImageNet statistics otherwise."""
    encoder = encoder_of(model)
    mean, std = getattr(encoder, "mean", None), getattr(encoder, "std", None)
    if mean is None or std is None:
        return Preprocess(width, height)
    return Preprocess(width, height, tuple(mean), tuple(std))


def param_groups(net, cfg: TrainConfig) -> list[dict]:
    """Two AdamW groups when ``encoder_lr_mult`` != 1: the encoder's parameters at lr × mult,
    everything else (decoder, heads) at lr. The schedule scales both alike."""
    encoder = encoder_of(net)
    if cfg.encoder_lr_mult == 1.0 or encoder is None:
        return [{"params": list(net.parameters())}]
    own = {id(p) for p in encoder.parameters()}
    return [{"params": [p for p in net.parameters() if id(p) in own], "lr": cfg.lr * cfg.encoder_lr_mult},
            {"params": [p for p in net.parameters() if id(p) not in own]}]


def class_weights(cfg: TrainConfig, train_set: SegTrain, num_classes: int, device: torch.device) -> torch.Tensor | None:
    if cfg.class_weighting == "none":
        return None
    weights = (median_frequency_weights([label for _, label in train_set.items], num_classes)
               if cfg.class_weighting == "median_frequency" else enet_weights(train_set.class_frequencies(num_classes)))
    return torch.from_numpy(weights).to(device)


def fit(cfg: TrainConfig, data_root: Path | None, out_dir: Path, resume: Path | None = None,
        stop_after: int | None = None, overwrite: bool = False) -> dict | None:
    """Train ``cfg.model`` on ``cfg.dataset``'s train split, evaluate on val; writes into ``out_dir``:
    ``last.pt``, ``best.pt`` (by val mIoU), ``metrics.csv`` and, at the end, ``curves.png``,
    ``confusion.png`` and ``predictions.png`` (of ``best.pt``). Returns the best metrics.

    ``resume`` continues exactly (weights, optimiser, schedule, random state) from a
    ``last.pt``; a folder that already holds a run needs ``resume`` or ``overwrite`` (which
    removes that run's files once everything else has been checked). ``stop_after`` ends after
    that epoch while keeping the schedule of ``cfg.epochs``, for time-boxed sessions that
    resume later. ``data_root=None`` uses the dataset's default location (see
    :func:`segrt.datasets.open_dataset`). Under torchrun only rank 0 evaluates and writes; the
    other ranks return None.
    """
    ddp = distributed.setup()
    try:
        return _fit(cfg, data_root, out_dir, resume, stop_after, ddp, overwrite)
    finally:
        distributed.teardown(ddp)


def _fit(cfg: TrainConfig, data_root: Path | None, out_dir: Path, resume: Path | None, stop_after: int | None,
         ddp: distributed.Dist, overwrite: bool = False) -> dict | None:
    check_out_dir(out_dir, resume, overwrite)
    p = _build(cfg, data_root, ddp, resume)
    start, best = _resume(p, cfg, resume) if resume is not None else (1, {"miou": -math.inf})
    log = EpochLog(out_dir, start, new=resume is None, overwrite=overwrite) if ddp.main else None
    try:
        for epoch in range(start, min(cfg.epochs, stop_after or cfg.epochs) + 1):
            if p.sampler is not None:
                p.sampler.set_epoch(epoch)  # a different shuffle each epoch, agreed across ranks
            t0 = time.perf_counter()
            loss = train_one_epoch(p, epoch)
            if log is not None:  # one writer: checkpoints, log and plots come from rank 0 only
                best = _end_epoch(p, cfg, ddp, out_dir, log, epoch, loss, best, time.perf_counter() - t0)
    finally:
        if log is not None:
            log.close()
    finished = stop_after is None or stop_after >= cfg.epochs
    if ddp.main and finished and p.swa.count:
        best = _score_average(p, best, out_dir, cfg.epochs)
    if ddp.main and finished and (out_dir / "best.pt").exists():
        write_plots(out_dir, p.model, p.val, p.spec, p.device)
    return best if ddp.main else None


def _build(cfg: TrainConfig, data_root: Path | None, ddp: distributed.Dist, resume: Path | None) -> Parts:
    """Seeds, data, model, loss, optimiser and schedule for ``cfg``: every check that can fail
    runs here, before the output folder is touched."""
    device, amp_dtype = resolve_device(cfg, ddp.local_rank)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    train_ds = open_dataset(cfg.dataset, data_root, "train")
    frames = _training_frames(cfg, train_ds, data_root)
    extra = {"pretrained": cfg.pretrained} if cfg.pretrained else {}
    model = build_model(cfg.model, num_classes=len(frames.classes), **cfg.model_args, **extra)
    spec = model_preprocess(model, cfg.input_width, cfg.input_height)
    # each rank augments differently (seed + rank) and reads its own shard of the frames
    train_set = SegTrain(frames, spec, cfg.scale_range, cfg.seed + ddp.rank, cfg.crop, cfg.colour_cast, cfg.degrade,
                         cfg.aspect_range, cfg.distill_resolution, cfg.haze)
    sampler = (torch.utils.data.DistributedSampler(train_set, ddp.world, ddp.rank, shuffle=True,
                                                   seed=cfg.seed, drop_last=True) if ddp.enabled else None)
    loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.batch_size, shuffle=sampler is None,
                                         sampler=sampler, drop_last=True, num_workers=0,
                                         pin_memory=device.type == "cuda")
    if len(loader) == 0:
        raise ConfigError(f"key 'batch_size': {cfg.batch_size} is more than the {len(train_set)} training frames "
                          f"(per process); use batch_size <= {len(train_set)}")
    classes = frames.classes
    loss_fn = build_loss(cfg.loss, class_weights(cfg, train_set, len(classes), device), frames.ignore_index,
                         cfg.entropy_weight)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    if cfg.init_from and resume is None:
        _init_from(model, cfg, frames, spec)
    distill = (load_teacher(cfg.distill_from, list(classes), spec, device, memory_format, cfg.distill_weight,
                            cfg.distill_temperature, cfg.distill_flip, cfg.distill_scales)
               if cfg.distill_from else None)
    trained = WithAux(model, cfg.model, len(classes), cfg.crop[::-1]) if cfg.aux_weight > 0 else model
    opt = torch.optim.AdamW(param_groups(trained, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    hold_from = (cfg.epochs - cfg.swa_epochs) * len(loader) if cfg.swa_epochs else None
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_factor(cfg.schedule, cfg.epochs * len(loader), cfg.warmup_epochs * len(loader), hold_from))
    meta = {"model": cfg.model, "model_args": dict(cfg.model_args), "classes": list(classes),
            "palette": [list(c) for c in frames.palette], "preprocess": spec.to_dict(),
            "config": dataclasses.asdict(cfg), "trained_on": f"{cfg.dataset} {frames.split} ({len(frames)} frames)",
            "torch_version": torch.__version__, "device": str(device)}
    return Parts(model=model, trained=trained, net=distributed.wrap(trained, ddp, device), train_set=train_set,
                 loader=loader, sampler=sampler, val=open_dataset(cfg.dataset, data_root, "val"), spec=spec,
                 loss_fn=loss_fn, opt=opt, sched=sched,
                 # loss scaling only for fp16 (bf16 has fp32's range); disabled, the scaler is a no-op
                 scaler=torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16),
                 swa=WeightAverage(), device=device, amp_dtype=amp_dtype, memory_format=memory_format,
                 aux_weight=cfg.aux_weight, distill=distill, bn_frozen_epochs=frozen_bn_epochs(cfg, model),
                 consistency=Consistency(cfg.consistency_weight, cfg.consistency_zoom, cfg.consistency_jitter)
                 if cfg.consistency_weight > 0 else None,
                 student_crop=cfg.crop[::-1] if cfg.distill_resolution != 1.0 else None, meta=meta)


def _resume(p: Parts, cfg: TrainConfig, resume: Path) -> tuple[int, dict]:
    """Restores a ``last.pt`` exactly (weights, optimiser, schedule, random state, averages);
    returns (first epoch to run, best metrics so far)."""
    state = checkpoint.load(resume)
    if state.get("model") != cfg.model or dict(state.get("model_args", {})) != dict(cfg.model_args):
        raise ConfigError(f"--resume {shown(resume)} holds {state.get('model')} {state.get('model_args')}, not "
                          f"{cfg.model} {dict(cfg.model_args)}; resume with the config it was trained with")
    missing = [k for k in ("optimizer", "scheduler", "torch_rng", "numpy_rng", "epoch", "best") if k not in state]
    if missing:
        raise ConfigError(f"--resume {shown(resume)} is not a last.pt (no {missing[0]}: a best.pt or shipped "
                          "checkpoint); resume from the run's last.pt, or start from it with init_from:")
    if (cfg.aux_weight > 0) != ("aux_head" in state):
        raise ConfigError(f"--resume {shown(resume)} was trained with{'out' if 'aux_head' not in state else ''} "
                          "an auxiliary head; keep aux_weight as it was")
    p.model.load_state_dict(state["state_dict"])
    if cfg.aux_weight > 0:
        p.trained.head.load_state_dict(state["aux_head"])
    p.opt.load_state_dict(state["optimizer"])
    p.sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    p.train_set.rng.bit_generator.state = state["numpy_rng"]
    if "swa" in state:
        p.swa.load_state_dict(state["swa"])
    return state["epoch"] + 1, state["best"]


def _end_epoch(p: Parts, cfg: TrainConfig, ddp: distributed.Dist, out_dir: Path, log: EpochLog, epoch: int,
               loss: float, best: dict, seconds: float) -> dict:
    """After an epoch (rank 0): the running average, val every ``eval_every`` epochs (a new
    best becomes best.pt), the log row and last.pt; returns the best metrics so far."""
    if epoch > cfg.epochs - cfg.swa_epochs:
        p.swa.update(p.model)
    metrics = None
    if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
        metrics = evaluate(p.model, p.val, p.spec, p.device)[0]
        if metrics["miou"] > best["miou"]:
            best = {**metrics, "epoch": epoch}
            checkpoint.save(out_dir / "best.pt", {**p.meta, "state_dict": p.model.state_dict(),
                                                  "epoch": epoch, "metrics": metrics})
    log.row([epoch, f"{loss:.4f}", f"{p.sched.get_last_lr()[0]:.3e}", f"{metrics['miou']:.4f}" if metrics else "",
             f"{metrics['pixel_accuracy']:.4f}" if metrics else "", f"{seconds:.1f}"])
    checkpoint.save(out_dir / "last.pt", {
        **p.meta, "state_dict": p.model.state_dict(), "optimizer": p.opt.state_dict(),
        "scheduler": p.sched.state_dict(), "torch_rng": torch.get_rng_state(),
        "numpy_rng": p.train_set.rng.bit_generator.state, "epoch": epoch, "best": best,
        "world_size": ddp.world, **({"metrics": metrics} if metrics else {}),
        **({"swa": p.swa.state_dict()} if p.swa.count else {}),
        **({"aux_head": p.trained.head.state_dict()} if cfg.aux_weight > 0 else {})})
    val_text = f" val mIoU {metrics['miou']:.3f}" if metrics else ""
    tqdm.write(f"epoch {epoch}/{cfg.epochs} loss {loss:.3f}{val_text} ({seconds:.0f}s)")
    return best


def _training_frames(cfg: TrainConfig, train_ds, data_root: Path | None):
    """The train split, with val (train_split: train+val) and extra_data folders appended."""
    from segrt.datasets import Concat

    parts = [train_ds] + ([open_dataset(cfg.dataset, data_root, "val")] if cfg.train_split == "train+val" else [])
    for folder in cfg.extra_data:
        extra = open_dataset("folder", folder, "train")
        same = tuple(extra.classes) == tuple(train_ds.classes) and extra.ignore_index == train_ds.ignore_index
        if not same:
            raise ConfigError(f"key 'extra_data': {folder} has classes {', '.join(extra.classes[:3])}, … and void "
                              f"{extra.ignore_index}; it needs {cfg.dataset}'s classes and void "
                              f"{train_ds.ignore_index}")
        parts.append(extra)
    return Concat(*parts) if len(parts) > 1 else train_ds


def _init_from(model, cfg: TrainConfig, train_ds, spec: Preprocess) -> None:
    """All the weights of ``init_from``, a checkpoint of the same model; one whose only
    difference is a wider ``encoder_head`` is narrowed to it (:mod:`segrt.train.prune`)."""
    init = checkpoint.load(cfg.init_from)
    if init.get("eval_only"):
        raise ConfigError(f"key 'init_from': {cfg.init_from} is eval-only ({init['eval_only']}); "
                          "use it as distill_from, and start from a checkpoint a training run wrote")
    have, want = dict(init.get("model_args", {})), dict(cfg.model_args)
    rest = {k: v for k, v in have.items() if k != "encoder_head"}
    narrowing = "encoder_head" in want and rest == {k: v for k, v in want.items() if k != "encoder_head"}
    if init["model"] != cfg.model or (have != want and not narrowing):
        raise ConfigError(f"key 'init_from': {cfg.init_from} holds {init['model']} {have}, "
                          f"not {cfg.model} {want}; point it at a checkpoint of this model")
    if have == want:
        checkpoint.load_weights(model, init["state_dict"])
        return
    full = checkpoint.build_from_checkpoint(init)
    prep = Preprocessor(spec)
    frames = torch.from_numpy(np.stack([prep(train_ds.read(i)[0]) for i in range(min(32, len(train_ds)))]))
    try:
        kept = narrow_head(full, model, frames)
    except ValueError as exc:
        raise ConfigError(f"key 'init_from': {cfg.init_from} cannot be narrowed to encoder_head "
                          f"{want['encoder_head']}: {exc}") from None
    tqdm.write(f"init_from {cfg.init_from}: encoder head narrowed from {full.encoder.out_channels[-1]} to "
               f"{len(kept)} channels, those most used on {len(frames)} training frames")


def _score_average(p: Parts, best: dict, out_dir: Path, epochs: int) -> dict:
    """Evaluates the averaged weights; they become best.pt when they beat the best epoch."""
    averaged = p.swa.averaged_model(p.model, p.loader, p.device, p.memory_format)
    metrics = evaluate(averaged, p.val, p.spec, p.device)[0]
    better = metrics["miou"] > best["miou"]
    tqdm.write(f"weights of the last {p.swa.count} epochs averaged: val mIoU {metrics['miou']:.3f} "
               f"({'best.pt now holds them' if better else 'best.pt keeps epoch ' + str(best.get('epoch'))})")
    if not better:
        return best
    metrics = {**metrics, "averaged_epochs": p.swa.count}
    checkpoint.save(out_dir / "best.pt", {**p.meta, "state_dict": averaged.state_dict(), "epoch": epochs,
                                          "metrics": metrics})
    return {**metrics, "epoch": epochs}


def write_plots(out_dir: Path, net, val, spec: Preprocess, device: torch.device) -> None:
    """curves.png, and confusion.png + predictions.png of best.pt on val."""
    plots.training_curves(out_dir / "metrics.csv", out_dir / "curves.png")
    checkpoint.load_weights(net, checkpoint.load(out_dir / "best.pt")["state_dict"])
    _, mat, samples = evaluate(net, val, spec, device, keep=4)
    plots.confusion_matrix(mat, val.classes, out_dir / "confusion.png")
    plots.prediction_grid(*zip(*samples, strict=True), val.palette, out_dir / "predictions.png")
