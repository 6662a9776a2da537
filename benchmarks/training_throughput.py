"""Training throughput: pyannote.audio's built-in ArcFace task vs the plugin, side by side

Trains, in turns and after a warm-up, for a few optimizer steps each:

  (i)   pyannote.audio 4's SupervisedRepresentationLearningWithArcFace + XVectorSincNet
  (ii)  the plugin's `aam` task + SincTDNN at stride 10 (same network size as (i))
  (iii) the plugin's `aam` task + SincTDNN at stride 5 (the paper's)
  (iv)  the default recipe, experiments/aam/config.yml as is: log-mel SincTDNN, its own batches
        (32 x 1), data-loading worker, speed perturbation, babble and reverberation on 30 % of
        the chunks: the data share of a step *with augmentation on*

on the same protocol, chunk duration, batch composition (speakers x chunks),
optimizer (Adam, lr 1e-3), number of DataLoader workers and torch threads,
with the same Lightning Trainer settings (no validation, no logger, no checkpoint).

A callback times every step: "data" is the time between the end of a step and
the start of the next one (Lightning fetching the batch: the DataLoader producing
it, plus Lightning's own bookkeeping), "compute" is forward + loss + backward +
optimizer step. Chunks/s = chunks / (data + compute) over the timed steps.

Usage
-----
    python benchmarks/training_throughput.py            # ~5 minutes on 2 cores
    python benchmarks/training_throughput.py --rounds 1 --steps 4 --num-workers 1
"""

from __future__ import annotations

import argparse
import time

from _common import PROTOCOL, REPOSITORY, median, set_threads, write_results


def timing_callback(warmup: int):
    from lightning.pytorch.callbacks import Callback

    class StepTimer(Callback):
        """Time data fetching and compute of each training step, after `warmup` steps"""

        def __init__(self):
            self.data, self.compute = [], []
            self._end = None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self._start = time.perf_counter()
            if self._end is not None and batch_idx >= warmup:
                self.data.append(self._start - self._end)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self._end = time.perf_counter()
            if batch_idx >= warmup:
                self.compute.append(self._end - self._start)

    return StepTimer()


def builtin(protocol, args):
    """(i) pyannote.audio's own task and model"""
    from pyannote.audio.models.embedding import XVectorSincNet
    from pyannote.audio.tasks import SupervisedRepresentationLearningWithArcFace

    class BuiltinArcFace(SupervisedRepresentationLearningWithArcFace):
        # pyannote.audio 4.0.7 cannot cache the trials of a database.yml protocol
        # (PicklingError); validation is off here anyway, so do not prepare it.
        def prepare_validation(self, prepared_dict):
            pass

    task = BuiltinArcFace(
        protocol,
        duration=args.duration,
        num_classes_per_batch=args.speakers,
        num_chunks_per_class=args.chunks,
        num_workers=args.num_workers,
    )
    return XVectorSincNet(task=task)


def plugin(stride: int):
    """(ii), (iii) the plugin's AAM task with SincTDNN at `stride`"""

    def make(protocol, args):
        from pyannote_embloss.config import OptimizerConfig
        from pyannote_embloss.models import SincTDNN
        from pyannote_embloss.tasks import get_task_class
        from pyannote_embloss.training.run import configure_optimizer

        task = get_task_class("aam")(
            protocol,
            duration=args.duration,
            num_classes_per_batch=args.speakers,
            num_chunks_per_class=args.chunks,
            num_workers=args.num_workers,
            batches_per_epoch=10_000,  # never reach the end of an epoch
        )
        model = SincTDNN(task=task, stride=stride, dimension=512)
        configure_optimizer(model, OptimizerConfig("Adam", {"lr": 1e-3}))  # pyannote.audio Model's default
        return model

    return make


def recipe(protocol, args):
    """(iv) experiments/aam/config.yml, as `pyannote-audio-emb train` builds it"""
    from pyannote_embloss.experiment import Experiment
    from pyannote_embloss.training.run import build_model, build_task, configure_optimizer

    config = Experiment.load(REPOSITORY / "experiments" / "aam").config
    task = build_task(config.task, protocol, augmentation=config.augmentation, batches_per_epoch=10_000)
    model = build_model(config.architecture, task)
    configure_optimizer(model, config.optimizer)
    return model


SYSTEMS = {
    "builtin_xvectorsincnet": ("(i) pyannote.audio ArcFace task + XVectorSincNet", builtin),
    "plugin_stride10": ("(ii) plugin aam + SincTDNN stride 10", plugin(10)),
    "plugin_stride5": ("(iii) plugin aam + SincTDNN stride 5", plugin(5)),
    "recipe": ("(iv) default recipe (experiments/aam), augmentation on", recipe),
}


def timed_trainer(args, callbacks: list):
    """A CPU Trainer for `args.warmup` + `args.steps` steps: no validation, logger, checkpoint nor progress bar"""
    from lightning import Trainer

    return Trainer(
        accelerator="cpu",
        max_steps=args.warmup + args.steps,
        callbacks=callbacks,
        limit_val_batches=0,  # pyannote.audio 4.0.7's embedding validation is broken
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def run(name: str, protocol, args) -> dict:
    from lightning import seed_everything

    seed_everything(0, verbose=False)
    model = SYSTEMS[name][1](protocol, args)
    timer = timing_callback(args.warmup)
    trainer = timed_trainer(args, [timer])
    trainer.fit(model)
    batch_size = model.task.batch_size
    data, compute = sum(timer.data), sum(timer.compute)
    steps = len(timer.compute)
    return {
        "steps": steps,
        "chunks_per_s": steps * batch_size / (data + compute),
        "data_s_per_step": data / max(1, len(timer.data)),
        "compute_s_per_step": compute / steps,
        "data_share": data / (data + compute),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default=PROTOCOL)
    parser.add_argument("--duration", type=float, default=2.0, help="chunk duration, s (2.0)")
    parser.add_argument("--speakers", type=int, default=64, help="speakers per batch (64)")
    parser.add_argument("--chunks", type=int, default=1, help="chunks per speaker (1)")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers (0)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--rounds", type=int, default=3, help="turns of (i), (ii), (iii) (3)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps at the start of each run (2)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per run (8)")
    parser.add_argument("--output", default=None, help="JSON path (results/benchmarks/training_throughput.json)")
    args = parser.parse_args()
    set_threads(args.threads)

    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    from pyannote_embloss.data.protocols import get_protocol

    protocol = get_protocol(args.protocol)
    runs = {name: [] for name in SYSTEMS}
    start = time.perf_counter()
    for r in range(args.rounds):
        for name in SYSTEMS:
            result = run(name, protocol, args)
            runs[name].append(result)
            print(
                f"round {r + 1}  {SYSTEMS[name][0]:<50} {result['chunks_per_s']:6.1f} chunks/s  "
                f"data {100 * result['data_share']:4.1f} % of step",
                flush=True,
            )

    summary = {
        name: {
            "description": SYSTEMS[name][0],
            "chunks_per_s": median([r["chunks_per_s"] for r in results]),
            "data_share": median([r["data_share"] for r in results]),
            "compute_s_per_step": median([r["compute_s_per_step"] for r in results]),
        }
        for name, results in runs.items()
    }
    ratios = {
        "stride10_over_builtin": median(
            [b["chunks_per_s"] / a["chunks_per_s"] for a, b in zip(runs["builtin_xvectorsincnet"], runs["plugin_stride10"])]
        ),
        "stride5_over_builtin": median(
            [b["chunks_per_s"] / a["chunks_per_s"] for a, b in zip(runs["builtin_xvectorsincnet"], runs["plugin_stride5"])]
        ),
    }
    print(f"\nmedian over {args.rounds} round(s), {args.steps} timed steps of "
          f"{args.speakers} x {args.chunks} chunks of {args.duration:g} s, "
          f"{args.num_workers} worker(s), {args.threads} thread(s):")
    for name, s in summary.items():
        print(f"  {s['description']:<50} {s['chunks_per_s']:6.1f} chunks/s   data {100 * s['data_share']:4.1f} % of step")
    print(f"  ratio (ii)/(i)  = {ratios['stride10_over_builtin']:.3f}   (goal >= 1.0)")
    print(f"  ratio (iii)/(i) = {ratios['stride5_over_builtin']:.3f}")
    print(f"  data share of plugin steps: {100 * max(summary['plugin_stride10']['data_share'], summary['plugin_stride5']['data_share']):.1f} % (goal < 10 %)")
    print(f"  data share of the default recipe, augmentation on: {100 * summary['recipe']['data_share']:.1f} % (goal < 10 %)")
    print(f"  wall time {time.perf_counter() - start:.0f} s")
    write_results(
        "training_throughput",
        {"settings": vars(args), "summary": summary, "ratios": ratios, "runs": runs},
        args.output,
    )


if __name__ == "__main__":
    main()
