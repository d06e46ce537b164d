"""The training loop: cached data → device augmentation → rasterised targets → DetectNet_v2 cost.

One process per GPU (torchrun DDP; only rank 0 writes). Per step: a batch is taken from
the uint8 cache on the device, augmented there, rasterised there, and run with bf16 autocast
and channels_last on GPU. Per epoch: autoweighting update, a JSON line in metrics.jsonl,
validation every `validation_period` epochs (from `first_validation_epoch`), a checkpoint every
`checkpoint_interval` epochs (plus the last), curves redrawn. A results folder that already
holds `checkpoints/last.pt` resumes from it. Rank 0 shows its progress (`heron.core.progress`):
a bar on a terminal; elsewhere a line at the end of each epoch (epoch, loss, images/s, time
left) and every PROGRESS_EVERY_S seconds within one, or log records with those numbers as
fields (`TrainOptions.progress_logs`: the Job's JSON logs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from heron.core.progress import Reporter
from heron.evaluation.images import to_float
from heron.training import checkpoint as ckpt
from heron.training import qat
from heron.training.augment import augment
from heron.training.dataset import DetectionDataset, ImageCache, LabelledImage
from heron.training.distributed import Dist, setup, teardown
from heron.training.ema import averaged, restore
from heron.training.losses import CoverageLoss, DetectNetCost, regularization
from heron.training.metrics_log import MetricsLog, plot_curves
from heron.training.model import DetectNetV2, apply_freeze_bn
from heron.training.network import build_model

# Re-exported (the alias marks it so for mypy): tests and bench scripts that call `train`
# import its options from here.
from heron.training.options import TrainOptions as TrainOptions  # noqa: PLC0414
from heron.training.schedule import soft_start_annealing
from heron.training.settings import TrainingSettings
from heron.training.targets import Rasterizer

log = logging.getLogger(__name__)
FINAL_MODEL = "model.pt"
PROGRESS_EVERY_S = 30.0  # a progress line within an epoch at most this often (off a terminal)


class ResumeError(ValueError):
    """The results folder holds a checkpoint of a different model."""


@dataclass
class TrainResult:
    results: Path
    final_model: Path
    epochs: int
    steps: int
    wall_s: float
    images_per_s: float
    last_record: dict[str, Any] = field(default_factory=dict)
    # Images/s after this run's first epoch, which pays torch.compile, cuDNN autotuning and
    # allocator warm-up once (75 s of 184 s in a 120-epoch MobileNetV2 run on an H100).
    steady_images_per_s: float = 0.0


@dataclass
class _State:
    model: DetectNetV2
    net: nn.Module
    optimizer: torch.optim.Optimizer
    cost: DetectNetCost
    ema: AveragedModel | None = None
    epoch: int = 0
    step: int = 0

    @property
    def evaluated(self) -> DetectNetV2:
        """The weights validated, checkpointed as `model` and exported."""
        if self.ema is not None:
            return cast(DetectNetV2, self.ema.module)
        return self.model


def train(
    settings: TrainingSettings,
    train_items: list[LabelledImage],
    val_items: list[LabelledImage],
    results: Path,
    options: TrainOptions | None = None,
) -> TrainResult:
    """Train, validate and checkpoint into `results`; returns where the final model is."""
    options = options or TrainOptions()
    dist, device = setup(options.device)
    try:
        return _train(
            settings,
            train_items=train_items,
            val_items=val_items,
            results=results,
            options=options,
            dist=dist,
            device=device,
        )
    finally:
        teardown(dist)


def _train(
    settings: TrainingSettings,
    *,
    train_items: list[LabelledImage],
    val_items: list[LabelledImage],
    results: Path,
    options: TrainOptions,
    dist: Dist,
    device: torch.device,
) -> TrainResult:
    cuda = device.type == "cuda"
    amp = cuda if options.amp is None else options.amp
    channels_last = cuda if options.channels_last is None else options.channels_last
    torch.manual_seed(settings.random_seed + dist.rank)
    if cuda:
        torch.backends.cudnn.benchmark = options.cudnn_benchmark
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if settings.optim.enable_qat and amp:
        # Fake quantisation rounds to the int8 grid in fp32; bf16 would round again after it.
        log.info("QAT: training in fp32 (bf16 autocast off)")
        amp = False
    w, h = settings.model.input_width, settings.model.input_height
    started = time.perf_counter()
    train_cache = ImageCache.build(DetectionDataset(train_items, w, h), device, options.workers)
    state = _build_state(
        settings, device, channels_last, dist, options.coverage_loss, cache=train_cache
    )
    _resume(state, results, settings, options, dist)
    val_cache = None
    if options.validate and val_items and dist.main:
        val_cache = ImageCache.build(DetectionDataset(val_items, w, h), device, options.workers)
    if dist.main:
        log.info(
            "cached %d training, %d validation images in %.1f s",
            len(train_items),
            len(val_items) if val_cache else 0,
            time.perf_counter() - started,
        )
    if options.compile:
        state.net = torch.compile(state.net)  # type: ignore[assignment]
    metrics = MetricsLog(results)
    if dist.main and state.epoch:
        metrics.truncate_after(state.epoch)
    loop = _Loop(
        settings,
        options=options,
        dist=dist,
        device=device,
        amp=amp,
        channels_last=channels_last,
        cache=train_cache,
    )
    if dist.main:
        # With a small data set, more GPUs mean fewer, larger steps (docs/training.md).
        log.info(
            "%d process(es) x batch %d = %d images a step: %d steps an epoch, %d in %d epochs",
            dist.world,
            loop.batch,
            dist.world * loop.batch,
            loop.steps,
            loop.total_steps,
            settings.optim.num_epochs,
        )
    record: dict[str, Any] = {}
    total_images, total_time = 0, 0.0
    steady_images, steady_time = 0, 0.0
    with _progress(options, dist, settings.optim.num_epochs, state.epoch, loop.steps) as progress:
        while state.epoch < settings.optim.num_epochs:
            record, images, seconds = loop.epoch(state, progress.step)
            if total_time:  # every epoch but this run's first
                steady_images, steady_time = steady_images + images, steady_time + seconds
            total_images, total_time = total_images + images, total_time + seconds
            state.epoch += 1
            record["epoch"] = state.epoch
            if val_cache is not None and _due_validation(settings, state.epoch):
                record.update(
                    _validate(
                        state,
                        cache=val_cache,
                        settings=settings,
                        device=device,
                        results=results,
                    )
                )
            progress.epoch_done(record)
            if dist.main:
                metrics.append(record)
                # Curves with the checkpoints and validations, not every epoch: a figure costs
                # about as much as a small epoch.
                if _checkpoint_if_due(state, settings, results, record) or "ap" in record:
                    plot_curves(metrics.path, results)
            dist.barrier()
    final = results / FINAL_MODEL
    if dist.main:
        _save(state, settings, ckpt.last_path(results), record)
        _save(state, settings, final, record, training_state=False)
    return TrainResult(
        results,
        final,
        state.epoch,
        state.step,
        total_time,
        total_images / total_time if total_time else 0.0,
        record,
        steady_images / steady_time if steady_time else 0.0,
    )


def _build_state(
    settings: TrainingSettings,
    device: torch.device,
    channels_last: bool,
    dist: Dist,
    coverage_loss: CoverageLoss,
    *,
    cache: ImageCache,
) -> _State:
    model, report = build_model(settings.model, len(settings.classes))
    if report is not None and dist.main:
        log.info("pretrained weights: %s", report)
    model.to(device)
    if settings.optim.enable_qat:
        _prepare_qat(model, cache, settings, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    o = settings.optim
    optimizer = torch.optim.Adam(
        params,
        lr=o.min_learning_rate,
        betas=(o.adam_beta1, o.adam_beta2),
        eps=o.adam_epsilon,
        fused=device.type == "cuda",
    )
    net: nn.Module = model
    if dist.enabled:
        ids = [device.index] if device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    ema = averaged(model, o.ema_decay) if o.ema_decay else None
    return _State(model, net, optimizer, DetectNetCost(settings, coverage_loss), ema)


def _prepare_qat(
    model: DetectNetV2, cache: ImageCache, settings: TrainingSettings, device: torch.device
) -> None:
    """Fold, wrap and calibrate a float network; a QAT network (a QAT retrain) is kept as is.

    Every rank calibrates on the same first images (no augmentation), so the ranges agree
    without a broadcast.
    """
    if any(isinstance(m, qat.FakeQuantizer) for m in model.modules()):
        return
    qat.prepare_structure(model)
    count = min(len(cache), qat.CALIBRATION_BATCHES * settings.optim.batch_size)
    batch = settings.optim.batch_size
    starts = range(0, count, batch)
    index = (torch.arange(s, min(s + batch, count)) for s in starts)
    qat.calibrate(model, (to_float(cache.batch(i, device)[0]) for i in index))


def _resume(
    state: _State, results: Path, settings: TrainingSettings, options: TrainOptions, dist: Dist
) -> None:
    path = ckpt.last_path(results)
    if not (options.resume and path.is_file()):
        return
    saved = ckpt.load(path)
    if saved.settings.classes != settings.classes or saved.settings.model != settings.model:
        raise ResumeError(
            f"{path}: this results folder holds a checkpoint of another model "
            f"(classes {list(saved.settings.classes)}, {saved.settings.model.arch}"
            f"{saved.settings.model.num_layers}); use a new results folder or remove it"
        )
    state.model.load_state_dict(saved.training_model or saved.model)
    if state.ema is not None:
        restore(state.ema, saved.model, saved.step)
    if saved.optimizer:
        state.optimizer.load_state_dict(saved.optimizer)
    if saved.cost:
        state.cost.load_state_dict(saved.cost)
    state.epoch, state.step = saved.epoch, saved.step
    if dist.main:
        log.info("resuming from %s: epoch %d, step %d", path, saved.epoch, saved.step)


class _Loop:
    """One epoch of optimiser steps."""

    def __init__(
        self,
        settings: TrainingSettings,
        *,
        options: TrainOptions,
        dist: Dist,
        device: torch.device,
        amp: bool,
        channels_last: bool,
        cache: ImageCache,
    ) -> None:
        self.settings = settings
        self.options = options
        self.dist = dist
        self.device = device
        self.amp = amp
        self.channels_last = channels_last
        self.cache = cache
        self.raster = Rasterizer(settings)
        self.batch = settings.optim.batch_size
        self.steps = cache.steps_per_epoch(self.batch, dist.world)
        if options.max_steps_per_epoch:
            self.steps = min(self.steps, options.max_steps_per_epoch)
        self.total_steps = self.steps * settings.optim.num_epochs

    def epoch(
        self, state: _State, tick: Callable[[_Tick], None]
    ) -> tuple[dict[str, Any], int, float]:
        state.net.train()
        apply_freeze_bn(state.model, self.settings.model.freeze_bn)
        gen = torch.Generator(device=self.device)
        gen.manual_seed(self.settings.random_seed * 7919 + self.dist.rank * 104729 + state.epoch)
        sums = torch.zeros(3, device=self.device)
        lr = 0.0
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        batches = self.cache.batches(
            self.batch,
            self.device,
            seed=self.settings.random_seed,
            epoch=state.epoch,
            rank=self.dist.rank,
            world=self.dist.world,
        )
        done = 0
        for done, batch in enumerate(_take(batches, self.steps), start=1):
            lr = soft_start_annealing(state.step / max(1, self.total_steps), self.settings.optim)
            for group in state.optimizer.param_groups:
                group["lr"] = lr
            sums += self._step(state, batch, gen)
            state.step += 1
            images_so_far = done * self.batch * self.dist.world
            tick(_Tick(state.epoch, done, lr, images_so_far / (time.perf_counter() - start)))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        state.cost.end_epoch(reduce=self.dist.enabled)
        mean = (sums / max(1, done)).tolist()
        images = done * self.batch * self.dist.world
        record = {
            "step": state.step,
            "loss": mean[0],
            "cov_loss": mean[1],
            "bbox_loss": mean[2],
            "lr": lr,
            "epoch_s": round(seconds, 3),
            "images_per_s": round(images / seconds, 1) if seconds else 0.0,
        }
        return record, images, seconds

    def _step(
        self, state: _State, batch: tuple[Tensor, Tensor, Tensor], gen: torch.Generator
    ) -> Tensor:
        images, boxes, labels = batch
        aug = self.settings.augment
        mosaic_on = state.epoch < self.settings.optim.num_epochs - aug.mosaic_off_last_epochs
        x, boxes, labels = augment(images, boxes, labels, aug=aug, gen=gen, mosaic_on=mosaic_on)
        targets = self.raster(boxes, labels)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        progress = state.step / max(1, self.total_steps)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            cov, bbox = state.net(x, logits=True)
        loss = state.cost(cov, bbox, targets, progress)
        total = loss.total
        o = self.settings.optim
        reg = regularization(state.model, o.regularizer, o.regularizer_weight)
        if reg is not None:
            total = total + reg
        state.optimizer.zero_grad(set_to_none=True)
        total.backward()  # type: ignore[no-untyped-call]
        state.optimizer.step()
        if state.ema is not None:
            state.ema.update_parameters(state.model)
        parts = loss.parts.sum(dim=0)
        return torch.stack([loss.total.detach(), parts[0], parts[1]])


def _take(batches: Iterator[Any], n: int) -> Iterator[Any]:
    for i, batch in enumerate(batches):
        if i >= n:
            return
        yield batch


def _due_validation(settings: TrainingSettings, epoch: int) -> bool:
    e = settings.evaluation
    last = epoch == settings.optim.num_epochs
    return epoch >= e.first_validation_epoch and (epoch % e.validation_period == 0 or last)


def _validate(
    state: _State,
    *,
    cache: ImageCache,
    settings: TrainingSettings,
    device: torch.device,
    results: Path,
) -> dict[str, Any]:
    try:
        from heron.training.validation import validate, write_pr_curves

        # fp32 here even when training in bf16: scores rank the detections for AP, and bf16
        # keeps only 8 bits of them.
        result = validate(state.evaluated, cache, settings, device, amp=False)
        write_pr_curves(result, results / "pr_curves.png")
    except ImportError as e:  # the GPU image may lack the clustering/evaluation extras
        log.warning("validation skipped: %s", e)
        return {}
    log.info("epoch %d: mAP %.4f %s", state.epoch, result.mean_ap, result.ap)
    return result.as_record()


def _checkpoint_if_due(
    state: _State, settings: TrainingSettings, results: Path, record: dict[str, Any]
) -> bool:
    last = state.epoch == settings.optim.num_epochs
    if state.epoch % settings.optim.checkpoint_interval == 0 or last:
        path = ckpt.epoch_path(results, state.epoch)
        _save(state, settings, path, record)
        _save(state, settings, ckpt.last_path(results), record)
        return True
    return False


def _save(
    state: _State,
    settings: TrainingSettings,
    path: Path,
    record: dict[str, Any],
    training_state: bool = True,
) -> None:
    ckpt.save(
        path,
        ckpt.Checkpoint(
            settings=settings,
            model=state.evaluated.state_dict(),
            training_model=(
                state.model.state_dict() if training_state and state.ema is not None else None
            ),
            epoch=state.epoch,
            step=state.step,
            optimizer=state.optimizer.state_dict() if training_state else None,
            cost=state.cost.state_dict() if training_state else None,
            metrics=record,
        ),
    )


@dataclass(frozen=True)
class _Tick:
    """Where an epoch is after a step: the epoch (0-based), its steps done, the learning rate,
    the epoch's images/s so far."""

    epoch: int
    done: int
    lr: float
    images_per_s: float


class _Progress:
    """Rank 0's progress over this run's steps (resumed epochs are not counted): each step moves
    the bar, or a line when PROGRESS_EVERY_S has passed; each epoch's end writes a line with its
    loss, images/s and, when it was validated, its mAP. Without a reporter, nothing."""

    def __init__(
        self, reporter: Reporter | None, epochs: int, start_epoch: int, steps: int
    ) -> None:
        self.reporter = reporter
        self.epochs = epochs
        self.start_epoch = start_epoch
        self.steps = steps  # an epoch's
        self.total = (epochs - start_epoch) * steps
        self.last = ""  # the last epoch's loss, which the bar keeps showing

    def step(self, tick: _Tick) -> None:
        if self.reporter is None:
            return
        epoch = tick.epoch + 1
        self.reporter.update(
            (tick.epoch - self.start_epoch) * self.steps + tick.done,
            self.total,
            text=f"epoch {epoch}/{self.epochs}, {tick.images_per_s:.1f} images/s{self.last}",
            fields={"epoch": epoch, "epochs": self.epochs, "lr": tick.lr,
                    "images_per_s": round(tick.images_per_s, 1)},
        )  # fmt: skip

    def epoch_done(self, record: dict[str, Any]) -> None:
        if self.reporter is None:
            return
        epoch, loss, speed = record["epoch"], record["loss"], record["images_per_s"]
        text = f"epoch {epoch}/{self.epochs} done, loss {loss:.4g}, {speed:.1f} images/s"
        fields = {
            "epoch": epoch,
            "epochs": self.epochs,
            "loss": loss,
            "lr": record["lr"],
            "images_per_s": speed,
            "epoch_s": record["epoch_s"],
        }
        if record.get("mAP") is not None:
            text += f", mAP {record['mAP']:.4f}"
            fields["mAP"] = record["mAP"]
        done = (epoch - self.start_epoch) * self.steps
        self.reporter.update(done, self.total, text=text, fields=fields, force=True)
        self.last = f"; epoch {epoch}: loss {loss:.4g}"


@contextmanager
def _progress(
    options: TrainOptions, dist: Dist, epochs: int, start_epoch: int, steps: int
) -> Iterator[_Progress]:
    """The run's progress on rank 0 (`TrainOptions.progress`): a bar on a terminal, lines
    elsewhere, log records with `progress_logs`; on the other ranks, or switched off, nothing."""
    if not (options.progress and dist.main):
        yield _Progress(None, epochs, start_epoch, steps)
        return
    from rich import get_console

    # rich's global console: the one RichHandler logs through, so log lines land above the bar.
    reporter = Reporter(
        get_console(),
        every_s=PROGRESS_EVERY_S,
        unit="steps",
        log=log if options.progress_logs else None,
    )
    with reporter:
        reporter.stage("train")
        yield _Progress(reporter, epochs, start_epoch, steps)
