"""Learning-rate and margin schedules, from config.yml

    scheduler:                  # any torch.optim.lr_scheduler class, by name
      name: OneCycleLR
      interval: step            # step (default) or epoch
      params: {max_lr: 0.005, pct_start: 0.15}   # OneCycleLR's total_steps defaults to the run's

    scheduler:                  # warm-up then exponential decay (WeSpeaker)
      name: SequentialLR
      params:
        schedulers:
          - {name: LinearLR, params: {start_factor: 0.1, total_iters: 100}}
          - {name: ExponentialLR, params: {gamma: 0.998}}
        milestones: [100]

    margin_scheduler:           # losses with a margin (AAM, AM): `initial` until start_step, then up to the loss' margin
      initial: 0.0
      start_step: 100
      end_step: 500
      increase: linear          # or exp (WeSpeaker's MarginScheduler)

Steps are optimizer steps counted over all devices (Lightning's
``global_step``), so that schedules resume exactly and do not depend on the
number of GPUs.
"""

from __future__ import annotations

import math

from lightning.pytorch.callbacks import Callback

__all__ = ["MarginScheduler", "margin_at"]


# ---------------------------------------------------------------- margin


def margin_at(step: int, final: float, initial: float = 0.0, start_step: int = 0, end_step: int = 0,
              increase: str = "linear") -> float:
    """Margin at optimizer step `step`

    `initial` up to `start_step`, `final` from `end_step` on, and in between
    a linear ramp, or WeSpeaker's exponential one
    (``final - (final - initial) * exp(-5 r)`` rescaled so that it reaches
    `final` at `end_step`, r being the position in the ramp).
    """
    if step <= start_step:
        return initial
    if step >= end_step:
        return final
    r = (step - start_step) / (end_step - start_step)
    if increase == "exp":
        r = (1.0 - math.exp(-5.0 * r)) / (1.0 - math.exp(-5.0))
    return initial + (final - initial) * r


class MarginScheduler(Callback):
    """Sets the loss' margin before every training step (see :func:`margin_at`)

    Parameters
    ----------
    final : float
        Target margin (the loss' configured margin).
    initial, start_step, end_step, increase
        See :func:`margin_at`.
    """

    def __init__(self, final: float, initial: float = 0.0, start_step: int = 0, end_step: int = 0,
                 increase: str = "linear"):
        self.final = final
        self.settings = dict(initial=initial, start_step=start_step, end_step=end_step, increase=increase)

    def margin(self, step: int) -> float:
        return margin_at(step, self.final, **self.settings)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        margin = self.margin(trainer.global_step)
        pl_module.loss_func.margin = margin
        pl_module.log("margin", margin, on_step=True, on_epoch=False, prog_bar=False, logger=True, batch_size=1)
