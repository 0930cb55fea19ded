"""Training progress as plain lines, for logs and pipes.

On a terminal, Lightning's progress bar shows a stage's progress in place.
Piped into a file, that bar would write a frame (ending in a carriage return)
at every refresh; :class:`TextProgress` writes instead, per stage, one
heading, one line every ``every`` optimizer steps (loss, learning rates,
steps per second), one line per validation and a closing summary. Only the
first process of a multi-GPU run writes.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import lightning as L

from glnet_geo.models.stages import Stage

#: What each stage of Algorithm 1 trains, for the headings.
STAGE_WORK = {
    Stage.GLOBAL: "the global branch G on downsampled scenes",
    Stage.GLOBAL_TO_LOCAL: "the local branch L and the aggregation, G frozen (G->L sharing)",
    Stage.LOCAL_TO_GLOBAL: "G and the aggregation, L frozen (G<->L sharing)",
}


def is_terminal() -> bool:
    """Tell whether standard error is a terminal (where a progress bar belongs)."""
    return sys.stderr.isatty()


def _count(number: int | None, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class TextProgress(L.Callback):
    """Report a stage's training in plain lines.

    Args:
        stage: The stage being trained.
        position: Its 1-based position among the stages of the run.
        total: How many stages the run trains.
        every: Write a line every this many optimizer steps.
        write: Where lines go (default: standard error, flushed).

    """

    def __init__(self, stage: Stage, position: int, total: int, every: int = 10,
                 write: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.stage, self.position, self.total = stage, position, total
        self.every = max(1, int(every))
        self.write = write or _stderr
        self._start = self._mark = 0.0
        self._mark_step = self._first_step = 0
        self._loss: float | None = None

    def _say(self, trainer: L.Trainer, line: str) -> None:
        if trainer.is_global_zero:
            self.write(line)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write the stage's heading."""
        if trainer.max_steps and trainer.max_steps > 0:
            length = _count(trainer.max_steps, "step")
        else:
            length = _count(trainer.max_epochs, "epoch")
        self._say(trainer, f"== stage {self.position}/{self.total}: {self.stage.value} -- "
                           f"trains {STAGE_WORK[self.stage]}; {length}, from step "
                           f"{trainer.global_step}")
        self._start = self._mark = time.perf_counter()
        self._first_step = self._mark_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        """Write a line every ``every`` steps: step, loss, learning rates, speed."""
        loss = trainer.callback_metrics.get("train_loss")
        if loss is not None:
            self._loss = float(loss)
        step = trainer.global_step
        if step == self._mark_step or step % self.every:
            return
        now = time.perf_counter()
        rate = (step - self._mark_step) / max(now - self._mark, 1e-9)
        self._mark, self._mark_step = now, step
        rates = "/".join(dict.fromkeys(f"{group['lr']:.2e}" for optimizer in trainer.optimizers
                                       for group in optimizer.param_groups))
        steps = f"{step}/{trainer.max_steps}" if trainer.max_steps > 0 else f"{step}"
        loss_text = "nan" if self._loss is None or math.isnan(self._loss) else f"{self._loss:.4f}"
        self._say(trainer, f"   {self.stage.value} step {steps}  epoch {trainer.current_epoch}  "
                           f"loss {loss_text}  lr {rates}  {rate:.2f} steps/s")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write the validation scores."""
        miou = trainer.callback_metrics.get("val_miou")
        if miou is not None and not trainer.sanity_checking:
            accuracy = trainer.callback_metrics.get("val_pixel_accuracy")
            extra = f", pixel accuracy {float(accuracy):.4f}" if accuracy is not None else ""
            self._say(trainer, f"   {self.stage.value} validation at step "
                               f"{trainer.global_step}: mIoU {float(miou):.4f}{extra}")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write the stage's summary."""
        seconds = time.perf_counter() - self._start
        steps = trainer.global_step - self._first_step
        loss = "n/a" if self._loss is None else f"{self._loss:.4f}"
        miou = trainer.callback_metrics.get("val_miou")
        scores = f", last validation mIoU {float(miou):.4f}" if miou is not None else ""
        self._say(trainer, f"== stage {self.position}/{self.total}: {self.stage.value} done: "
                           f"{_count(steps, 'step')} in {seconds:.1f} s "
                           f"({steps / max(seconds, 1e-9):.2f} steps/s), last loss {loss}"
                           f"{scores}")
