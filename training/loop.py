"""The training loop of ``dlc train`` and ``dlc.training.fit``.

Design choices, each for a property the recipe promises:

- **Data in device tensors, batches by index.** The splits are tensors on the training
  device (no DataLoader, no per-example Python); a batch is an ``index_select`` of a
  seeded permutation.
- **Randomness from (seed, epoch).** Each epoch's data order, augmentation generator and
  dropout seed derive from the recipe's seed and the epoch number, so a resumed run needs
  only the epoch (and, mid-epoch, the generators' states, which a checkpoint stores) to
  draw what an unbroken run draws: resuming is bit-exact on CPU.
- **Global batches split across ranks.** Under ``torchrun`` every rank draws the same
  permutation and takes its share of each global batch (the role of a
  ``DistributedSampler``, which would shard the epoch instead and so change which examples
  meet in a batch); losses are sums over the global count, so the gradient DDP averages is
  the single-process gradient of the same global batch, and the loss curves agree.
  Augmentation runs on the global batch before the split, so its draws are a single
  process's too; dropout masks and BatchNorm statistics stay per rank, as in any DDP run.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ..compiler.errors import DlcError
from ..compiler.recipe.recipe import lower_is_better
from ..compiler.recipe.schema import metric_name
from ..runtime.weights import init_weights, save_weights
from . import augment, checkpoint, report
from .objectives import loss_sums, metric_sums, pick
from .schedules import Schedule
from .setup import Plan

OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}
_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Interrupted(Exception):
    """Ctrl-C: a checkpoint was saved at the end of the current step."""

    def __init__(self, run_dir: Path, saved: Path | None):
        super().__init__(f"interrupted; checkpoint {saved}")
        self.run_dir, self.saved = run_dir, saved


@dataclass
class FitResult:
    """What a run gives back: one dict of metrics per epoch, the final weights (the best
    under ``early_stop(restore_best = true)``) and where the run wrote its files."""

    run_dir: Path
    history: list[dict[str, float]]
    weights: dict[str, np.ndarray]
    best: dict[str, Any] | None = None
    stopped_early: bool = False
    curves: Path | None = None
    pruned: bool = False  # stopped by ``on_epoch`` (a search's pruner)


@dataclass
class Ranks:
    """This process's place among ``torchrun``'s processes (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(t)
        return t


def ranks_from_env(device: str) -> Ranks:
    """Join ``torchrun``'s process group when it started this process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Ranks(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


def _seed(*parts: int) -> int:
    """A 63-bit seed for one purpose (seed, epoch, stream), by NumPy's SeedSequence."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, np.uint64)[0] >> 1)


def _generator(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(_seed(*parts))


@contextmanager
def _catch_interrupt():
    """The first Ctrl-C asks the loop to stop after its current step; a second one
    interrupts at once."""
    flag = {"stop": False}
    if threading.current_thread() is threading.main_thread():  # signals reach only it
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            flag["stop"] = True
            signal.signal(signal.SIGINT, previous)

        signal.signal(signal.SIGINT, handler)
        try:
            yield flag
        finally:
            signal.signal(signal.SIGINT, previous)
    else:
        yield flag


class Tally:
    """Running (sum, count) pairs of the loss terms then the metrics over an epoch: sums
    stay on the device (no sync per step), counts on the host when the batch's size gives
    them."""

    def __init__(self, n: int, device: torch.device):
        self.sums = torch.zeros(n, dtype=torch.float64, device=device)
        self.counts: list[Any] = [0] * n  # ints, or device tensors

    def add(self, pairs: list) -> None:
        self.sums += torch.stack([s.detach() for s, _ in pairs])
        self.counts = [old + c for old, (_, c) in zip(self.counts, pairs)]

    def rows(self) -> torch.Tensor:
        """(n, 2): each sum beside its count."""
        counts = [
            torch.as_tensor(c, dtype=torch.float64, device=self.sums.device) for c in self.counts
        ]
        return torch.stack([self.sums, torch.stack(counts)], 1) if counts else self.sums.view(0, 2)

    def load(self, rows: torch.Tensor) -> None:
        self.sums += rows[:, 0].to(self.sums.device)
        self.counts = rows[:, 1].tolist()

    @staticmethod
    def values(rows: torch.Tensor, weights: list[float]) -> list[float]:
        """(sum, count) rows to values: the loss (the first ``len(weights)`` rows' means,
        weighted), then each other row's mean."""
        means = (rows[:, 0] / rows[:, 1].clamp(min=1)).tolist()
        k = len(weights)
        return [sum(w * v for w, v in zip(weights, means[:k])), *means[k:]]


class Trainer:
    def __init__(self, plan: Plan, run_dir: Path, device: torch.device, ranks: Ranks, log):
        r = self.recipe = plan.recipe
        self.plan, self.run_dir, self.device, self.ranks, self.log = (
            plan,
            run_dir,
            device,
            ranks,
            log,
        )
        from ..backends.torch import build

        net = plan.network
        self.outputs = list(net.outputs)
        self.module = build(net, init_weights(net, seed=r.seed), check_inputs=False).to(device)
        self.model = self.module
        if ranks.world > 1:
            ids = [device.index] if device.type == "cuda" else None
            # Parameters that no loss reaches (an output no loss reads, a layer that reaches
            # no output) get no gradient, which DDP must be told to expect.
            read = {t.args.get("output") or self.outputs[0] for _, t in r.loss}
            unused = len(read) < len(self.outputs) or bool(net.warnings)
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.module, device_ids=ids, find_unused_parameters=unused
            )
        opt = r.optimizer
        self.opt = OPTIMIZERS[opt.name](self.module.parameters(), **opt.args)
        self.schedule = Schedule(r.schedule, opt.args["lr"], r.epochs, plan.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(device.type, enabled=r.precision == "fp16")
        self.autocast = (
            torch.autocast(device.type, dtype=_PRECISION[r.precision])
            if r.precision in _PRECISION
            else nullcontext()
        )
        self.steps = [(a.name, a.args) for a in r.augment]
        self.train = self._tensors(plan.train)
        self.val = self._tensors(plan.val) if plan.val is not None else None
        self.names = ["loss", *(metric_name(m.name, m.args) for m in r.metrics)]
        # state that a checkpoint carries
        self.epoch = 0
        self.global_step = 0
        self.history: list[dict[str, float]] = []
        self.early = {"best": None, "epoch": None, "bad": 0}
        self.best_weights: dict[str, torch.Tensor] | None = None

    def _tensors(self, ds) -> tuple[list[torch.Tensor], torch.Tensor, bool]:
        """A split on the device, and whether its target has ignored (negative) class ids,
        which a loss's count must then leave out (else every element counts: no sync)."""
        xs = [torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in ds.inputs.values()]
        y = torch.from_numpy(np.ascontiguousarray(ds.target)).to(self.device)
        if y.is_floating_point():
            return xs, y, False
        ignored = [t.args["ignore_index"] for _, t in self.recipe.loss if "ignore_index" in t.args]
        return xs, y, bool((y < 0).any() or torch.isin(y, torch.tensor(ignored)).any())

    # -- one batch
    def _loss(self, outs, y, ignoring: bool, sync: bool) -> tuple[torch.Tensor, list]:
        """The batch's loss (a mean over the global batch) and its terms' (sum, count)."""
        pairs = [
            loss_sums(term, pick(outs, self.outputs, term), y, ignoring)
            for _, term in self.recipe.loss
        ]
        counts = [c for _, c in pairs]
        if sync:  # the global count: the same mean on every rank
            counts = self.ranks.sum(torch.stack([torch.as_tensor(c, dtype=torch.float32,
                                    device=self.device) for c in counts])).unbind()  # fmt: skip
        world = self.ranks.world
        loss = None
        for (w, _), (total, _), count in zip(self.recipe.loss, pairs, counts):
            term = (
                total * (w * world / count)
                if isinstance(count, int)
                else total * (w * world) / count
            )
            loss = term if loss is None else loss + term
        return loss, pairs

    def _metrics(self, outs, y, ignoring: bool) -> list:
        return [
            metric_sums(m, pick(outs, self.outputs, m).detach(), y, ignoring)
            for m in self.recipe.metrics
        ]

    def _summarise(self, tally: Tally) -> list[float]:
        """Epoch sums (all ranks) to values: the weighted loss, then each metric."""
        return Tally.values(self.ranks.sum(tally.rows()), [w for w, _ in self.recipe.loss])

    def _tally(self) -> Tally:
        return Tally(len(self.recipe.loss) + len(self.recipe.metrics), self.device)

    # -- an epoch
    def train_epoch(self, flag: dict, skip: int = 0, saved: dict | None = None, progress=None):
        r, ranks = self.recipe, self.ranks
        xs, y, ignoring = self.train
        n = len(y)
        perm = torch.randperm(n, generator=_generator(r.seed, self.epoch, 0)).to(self.device)
        aug = _generator(r.seed, self.epoch, 1)
        torch.manual_seed(_seed(r.seed, self.epoch, 2))  # dropout
        batches = -(-n // r.batch)
        tally = self._tally()
        if saved is not None:  # resuming mid-epoch
            aug.set_state(saved["aug"])
            torch.set_rng_state(saved["torch"])
            if "cuda" in saved and self.device.type == "cuda":
                torch.cuda.set_rng_state(saved["cuda"], self.device)
            tally.load(saved["tally"])
        self.model.train()
        sync = ranks.world > 1
        for b in range(skip, batches):
            idx = perm[b * r.batch : (b + 1) * r.batch]
            x = [t.index_select(0, idx) for t in xs]
            t = y.index_select(0, idx)
            if self.steps:  # on the global batch: the draws of a single process
                x[0] = augment.apply(x[0], self.steps, aug)
            if sync:  # this rank's share of the global batch
                x = [v.tensor_split(ranks.world)[ranks.rank] for v in x]
                t = t.tensor_split(ranks.world)[ranks.rank]
            if b % r.accumulate == 0:
                for group in self.opt.param_groups:
                    group["lr"] = self.schedule.lr(self.global_step)
            with self.autocast:
                outs = self.model(*x)
                outs = outs if isinstance(outs, tuple) else (outs,)
                loss, pairs = self._loss(outs, t, ignoring, sync)
            self.scaler.scale(loss / r.accumulate if r.accumulate > 1 else loss).backward()
            if (b + 1) % r.accumulate == 0 or b == batches - 1:
                if r.clip is not None:
                    self.scaler.unscale_(self.opt)
                    torch.nn.utils.clip_grad_norm_(self.module.parameters(), r.clip)
                self.scaler.step(self.opt)
                self.scaler.update()
                self.opt.zero_grad(set_to_none=True)
                self.global_step += 1
            if r.metrics:
                with torch.no_grad():
                    pairs += self._metrics(outs, t, ignoring)
            tally.add(pairs)
            if progress is not None:
                progress(b + 1, batches, len(idx), tally, [w for w, _ in r.loss])
            # Stop only where a step ends (not inside an accumulation group), so that a
            # checkpoint holds no half-accumulated gradients.
            stop = flag["stop"] and ((b + 1) % r.accumulate == 0 or b == batches - 1)
            if sync:
                stop = bool(ranks.sum(torch.tensor([float(stop)])).item())
            if stop:
                state = {
                    "aug": aug.get_state(),
                    "torch": torch.get_rng_state(),
                    "tally": tally.rows(),
                }
                if self.device.type == "cuda":  # dropout on the GPU draws from its own
                    state["cuda"] = torch.cuda.get_rng_state(self.device)
                saved = self.save(b + 1, state)
                if sync:
                    dist.barrier()  # every rank leaves once rank 0's checkpoint is written
                raise Interrupted(self.run_dir, saved)
        return self._summarise(tally)

    @torch.no_grad()
    def evaluate(self, split) -> list[float]:
        """Loss and metrics of a split: each rank a contiguous share, sums combined."""
        xs, y, ignoring = split
        r, ranks = self.recipe, self.ranks
        share = torch.arange(len(y), device=self.device).tensor_split(ranks.world)[ranks.rank]
        tally = self._tally()
        self.module.eval()
        for start in range(0, len(share), r.batch):
            idx = share[start : start + r.batch]
            x = [t.index_select(0, idx) for t in xs]
            if self.steps:
                x[0] = augment.normalize_only(x[0], self.steps)
            t = y.index_select(0, idx)
            with self.autocast:
                outs = self.module(*x)
                outs = outs if isinstance(outs, tuple) else (outs,)
                _, pairs = self._loss(outs, t, ignoring, False)
            tally.add(pairs + (self._metrics(outs, t, ignoring) if r.metrics else []))
        return self._summarise(tally)

    # -- state
    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    def save(self, step: int, partial: dict | None = None) -> Path | None:
        """A checkpoint after ``self.epoch`` epochs and ``step`` batches of the next."""
        if not self.ranks.main:
            return None
        opt_tensors, opt_plain = checkpoint.optimizer_state(self.opt)
        tensors = {f"model.{k}": v for k, v in self.module.state_dict().items()}
        tensors.update(opt_tensors)
        state: dict[str, Any] = {
            "epoch": self.epoch,
            "step": step,
            "global_step": self.global_step,
            "optimizer": opt_plain,
            "schedule": self.schedule.state,
            "early_stop": self.early,
            "history": self.history,
            "scaler": self.scaler.state_dict(),
        }
        if partial is not None:
            tensors["rng.aug"] = partial["aug"]
            tensors["rng.torch"] = partial["torch"]
            tensors["partial.tally"] = partial["tally"]
            if "cuda" in partial:
                tensors["rng.cuda"] = partial["cuda"]
        keep = self.recipe.checkpoint.args["keep"]
        return checkpoint.save(
            self.run_dir, checkpoint.name(self.epoch, step), tensors, state, keep
        )

    def restore(self, path: Path) -> tuple[int, dict | None]:
        """Load a checkpoint: returns the batch to resume at and the mid-epoch state."""
        tensors, state = checkpoint.load(path)
        model = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        try:
            self.module.load_state_dict(model, strict=True)
            checkpoint.load_optimizer_state(self.opt, tensors, state["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise DlcError(
                f"checkpoint {path} does not fit this recipe's network or optimizer: {exc}"
            ) from None
        self.epoch, self.global_step = state["epoch"], state["global_step"]
        self.schedule.state = state["schedule"]
        self.early = state["early_stop"]
        self.history = state["history"]
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        best = self.run_dir / "best.safetensors"
        if best.is_file():
            from safetensors.torch import load_file

            self.best_weights = load_file(best)
        partial = None
        if "rng.aug" in tensors:
            partial = {
                "aug": tensors["rng.aug"],
                "torch": tensors["rng.torch"],
                "tally": tensors["partial.tally"],
            }
            if "rng.cuda" in tensors:
                partial["cuda"] = tensors["rng.cuda"]
        return state["step"], partial

    def early_stop(self, metrics: dict[str, float]) -> bool:
        """Update early stopping after an epoch; True when training should stop."""
        call = self.recipe.early_stop
        if call is None:
            return False
        a, e = call.args, self.early
        value = metrics[a["monitor"]]
        lower = lower_is_better(a["monitor"], a["mode"])
        best = e["best"]
        better = best is None or (
            value < best - a["min_delta"] if lower else value > best + a["min_delta"]
        )
        if better and math.isfinite(value):
            e.update(best=value, epoch=self.epoch, bad=0)
            if a["restore_best"]:
                self.best_weights = self.weights()
                if self.ranks.main:
                    from safetensors.torch import save_file

                    from ..runtime.files import atomic_write

                    w = {k: v.contiguous().cpu() for k, v in self.best_weights.items()}
                    atomic_write(self.run_dir / "best.safetensors", lambda tmp: save_file(w, tmp))
            return False
        e["bad"] += 1
        return e["bad"] >= a["patience"]  # as Keras: `patience` epochs without progress


def run(
    plan: Plan,
    run_dir: Path,
    *,
    resume: bool = False,
    device: str = "auto",
    console=None,
    overrides: dict | None = None,
    on_epoch: Callable[[dict[str, float]], bool] | None = None,
) -> FitResult:
    """Train ``plan``'s recipe, writing the run into ``run_dir``. ``on_epoch(metrics)``
    is called after each epoch; True stops the run (a search's pruner)."""
    dev_name = device
    if device == "auto":
        dev_name = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise DlcError(
            "--device cuda: no CUDA device is available (torch.cuda.is_available() is false)"
        )
    ranks = ranks_from_env(dev_name)
    try:
        return _run(plan, run_dir, resume, dev_name, ranks, console, overrides, on_epoch)
    finally:
        if ranks.world > 1:
            dist.destroy_process_group()  # else the exit aborts in c10d's destructors


def _run(plan, run_dir, resume, dev_name, ranks, console, overrides, on_epoch) -> FitResult:
    r = plan.recipe
    if dev_name == "cuda":
        dev_name = f"cuda:{ranks.local}"
        torch.cuda.set_device(ranks.local)
    dev = torch.device(dev_name)
    if r.batch < ranks.world:
        raise DlcError(
            f"batch = {r.batch} is smaller than the {ranks.world} processes", r.where("batch")
        )
    log = console if ranks.main else None
    with _determinism(r.deterministic):
        trainer = Trainer(plan, run_dir, dev, ranks, log)
        skip, partial = 0, None
        if resume:
            found = checkpoint.latest(run_dir)
            if found is None:
                raise DlcError(f"--resume {run_dir}: it holds no checkpoint to resume from")
            skip, partial = trainer.restore(found)
            if log:
                log.print(f"resuming {run_dir} from {found.name} (epoch {trainer.epoch + 1})")
        with _exclusive(run_dir, ranks.main):
            if ranks.main:
                report.write_recipe_json(plan, run_dir, dev, ranks.world, overrides)
            return _train(trainer, skip, partial, on_epoch)


@contextmanager
def _exclusive(run_dir: Path, main: bool):
    """Hold ``run_dir`` for this run: a second ``dlc train`` (a ``--resume`` of a run still
    going) is refused rather than interleaving its writes."""
    if not main:
        yield
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = open(run_dir / ".lock", "w")  # noqa: SIM115 - held for the whole run
    except OSError as exc:
        raise DlcError(f"cannot write the run folder {run_dir}: {exc.strerror or exc}") from None
    try:
        import fcntl

        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # not POSIX: no lock
        pass
    except OSError:
        lock.close()
        raise DlcError(f"another dlc train is writing to {run_dir}") from None
    try:
        yield
    finally:
        lock.close()


@contextmanager
def _determinism(on: bool):
    if not on:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    bench = torch.backends.cudnn.benchmark
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)
        torch.backends.cudnn.benchmark = bench


def _train(t: Trainer, skip: int, partial: dict | None, on_epoch=None) -> FitResult:
    r, plan, log = t.recipe, t.plan, t.log
    stopped = pruned = False
    with _catch_interrupt() as flag, report.Progress(log, r.epochs) as bar:
        writer = report.tensorboard_writer(t.run_dir) if t.ranks.main else None
        while t.epoch < r.epochs and not stopped:
            start = time.perf_counter()
            bar.start(t.epoch, -(-len(plan.train) // r.batch))
            train = t.train_epoch(flag, skip, partial, bar.update)
            skip, partial = 0, None
            row: dict[str, float] = {"epoch": t.epoch + 1}
            row.update({f"train.{k}": v for k, v in zip(t.names, train)})
            if t.val is not None:
                row.update({f"val.{k}": v for k, v in zip(t.names, t.evaluate(t.val))})
            row["lr"] = t.opt.param_groups[0]["lr"]
            row["time"] = time.perf_counter() - start
            t.schedule.end_epoch(row)
            stopped = t.early_stop(row)
            t.history.append(row)
            t.epoch += 1
            if t.ranks.main:
                report.write_metrics(t.run_dir, t.history)
                if writer is not None:
                    for k, v in row.items():
                        if k != "epoch":
                            writer.add_scalar(k, v, t.epoch)
                    writer.flush()
                bar.epoch_line(row)
            pruned = on_epoch is not None and bool(on_epoch(row))
            every = r.checkpoint.args["every"]
            if t.epoch % every == 0 or t.epoch == r.epochs or stopped or pruned:
                t.save(0)
            if pruned:
                break
        if writer is not None:
            writer.close()
    restore = r.early_stop is not None and r.early_stop.args["restore_best"]
    final = t.best_weights if restore and t.best_weights is not None else t.weights()
    weights = {
        k: v.float().cpu().numpy() if v.dtype == torch.bfloat16 else v.cpu().numpy()
        for k, v in final.items()
    }
    result = FitResult(
        t.run_dir, t.history, weights, dict(t.early) if r.early_stop else None, stopped,
        pruned=pruned,
    )  # fmt: skip
    if t.ranks.main:
        save_weights(weights, t.run_dir / "weights.safetensors", plan.network)
        result.curves = report.curves(t.run_dir)
        if log:
            if stopped:
                e = t.early
                log.print(
                    f"early stop: {r.early_stop.args['monitor']} has not improved for "
                    f"{e['bad']} epochs; best {e['best']:.4g} at epoch {e['epoch'] + 1}"
                    + (" (restored)" if restore else "")
                )
            log.print(f"run: {t.run_dir}  weights: {t.run_dir / 'weights.safetensors'}")
            svg = t.run_dir / "curves.svg"
            log.print(
                f"curves: {result.curves}"
                if result.curves
                else f"curves: dlc plot {t.run_dir} -o {svg} (needs matplotlib)"
            )
    return result


__all__ = ["FitResult", "Interrupted", "Trainer", "run"]
