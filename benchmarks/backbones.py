"""Backbones: training throughput and extraction speed of each architecture, side by side

For each backbone, on the same protocol, task and batches as the default recipe
(pyannote_embloss/recipes/aam.yml: `aam` task, 2 s chunks, 32 speakers x 1 chunk,
its DataLoader worker, AdamW; augmentation on, as the recipe trains, unless
`--no-augmentation`), with the same torch threads:

  sinctdnn_fbank    SincTDNN, log-mel front-end: the default recipe's architecture section (the reference)
  sinctdnn_sincnet  SincTDNN, SincNet front-end at stride 5 (the paper's), default sizes
  ecapa512          ECAPATDNN, 512 channels
  ecapa1024         ECAPATDNN, 1024 channels
  wespeaker         WeSpeakerResNet34 (pyannote.audio's network, the plugin's subclass)
  xvectorsincnet    pyannote.audio.models.embedding.XVectorSincNet, as pyannote.audio builds it

1. Training throughput. `--warmup` untimed then `--steps` timed optimizer steps per
   backbone, in turns (`--rounds` times, medians kept), with the step timer of
   training_throughput.py: chunks/s = chunks / (data + compute) over the timed steps.
   The forward + backward FLOPs of one batch (loss included) are counted with
   torch.utils.flop_counter.FlopCounterMode (matrix products and convolutions; FFTs
   and element-wise operations are not counted). Achieved GFLOP/s = FLOPs per chunk x
   chunks / compute time; its share of the machine's float32 matmul peak (2048 x 2048
   torch.matmul, same threads, measured in the same run, before and after the
   training runs: the higher is kept) says how well each backbone uses the CPU.
   Ratios are to the default recipe's backbone, run by run.

2. Extraction speed. The model trained in the last round (speed does not depend on
   the weights), in eval mode, embeds the first `--num-files` test files whole,
   through the plugin's path (pyannote_embloss.inference.embedding.embed_files, what
   `evaluate` uses; `apply` shares iter_embeddings) and through pyannote.audio's
   `Inference(model, window="whole")`, in turns (`--repeats` times, median kept).
   Real-time factor (RTF) = processing time / audio duration (lower is faster),
   audio decoding included on both sides.

Run it on a quiet machine: with torch's 2 threads on 2 cores that other processes
also use, the threads wait for each other and steps get several times slower (a
warning is printed when the load average is above 0.5 at the start).

Usage
-----
    python benchmarks/backbones.py                       # ~12 minutes on 2 quiet cores (estimate)
    python benchmarks/backbones.py --backbones ecapa512 wespeaker --steps 5 --num-files 20
    python benchmarks/backbones.py --steps 2 --warmup 1 --rounds 1 --num-files 3 --repeats 1   # smoke test
"""

from __future__ import annotations

import argparse
import os
import time

from _common import PROTOCOL, matmul_peak_gflops, median, set_threads, write_results
from inference import test_files
from training_throughput import timed_trainer, timing_callback

#: name -> (description, (architecture name, params) or None for the default recipe's architecture section)
BACKBONES = {
    "sinctdnn_fbank": ("SincTDNN log-mel (default recipe)", None),
    "sinctdnn_sincnet": ("SincTDNN SincNet stride 5 (paper)", ("SincTDNN", {"stride": 5})),
    "ecapa512": ("ECAPATDNN 512 channels", ("ECAPATDNN", {"channels": 512})),
    "ecapa1024": ("ECAPATDNN 1024 channels", ("ECAPATDNN", {"channels": 1024})),
    "wespeaker": ("WeSpeakerResNet34", ("WeSpeakerResNet34", {})),
    "xvectorsincnet": ("pyannote.audio XVectorSincNet", ("pyannote.audio.models.embedding.XVectorSincNet", {})),
}
REFERENCE = "sinctdnn_fbank"


def default_recipe():
    """The default recipe's configuration (pyannote_embloss/recipes/aam.yml, = experiments/aam)"""
    from pyannote_embloss.config import ExperimentConfig
    from pyannote_embloss.experiment import DEFAULT_RECIPE

    return ExperimentConfig.read(DEFAULT_RECIPE)


def architecture(name: str, recipe):
    """The `architecture:` section of backbone `name`"""
    from pyannote_embloss.config import ArchitectureConfig

    spec = BACKBONES[name][1]
    return recipe.architecture if spec is None else ArchitectureConfig(*spec)


def training_flops(model, batch) -> tuple[int, int]:
    """FLOPs of the forward pass, and of forward + loss + backward, on `batch`"""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.train()
    X, y = batch["X"], batch["y"]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(X)
    forward = counter.get_total_flops()
    model.zero_grad(set_to_none=True)
    with FlopCounterMode(display=False) as counter:
        model.loss_func(model(X), y).backward()
    model.zero_grad(set_to_none=True)
    return forward, counter.get_total_flops()


def train(name: str, protocol, recipe, args) -> tuple[dict, object]:
    """Train backbone `name` for `args.warmup` + `args.steps` steps: timings, sizes, FLOPs; and the model"""
    from lightning import Callback, seed_everything

    from pyannote_embloss.training.run import build_model, build_task, configure_optimizer, count_parameters

    class KeepBatch(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.batch = batch

    seed_everything(0, verbose=False)
    augmentation = None if args.no_augmentation else recipe.augmentation
    task = build_task(recipe.task, protocol, augmentation=augmentation, batches_per_epoch=10_000)
    model = build_model(architecture(name, recipe), task)
    configure_optimizer(model, recipe.optimizer)
    timer, keep = timing_callback(args.warmup), KeepBatch()
    trainer = timed_trainer(args, [timer, keep])
    trainer.fit(model)
    batch_size = task.batch_size
    data, compute = sum(timer.data), sum(timer.compute)
    steps = len(timer.compute)
    forward, total = training_flops(model, keep.batch)
    loss_parameters = count_parameters(getattr(model, "loss_func", None))
    return {
        "steps": steps,
        "batch_size": batch_size,
        "parameters": count_parameters(model) - loss_parameters,
        "loss_parameters": loss_parameters,
        "chunks_per_s": steps * batch_size / (data + compute),
        "s_per_step": (data + compute) / steps,
        "data_s_per_step": data / max(1, len(timer.data)),
        "compute_s_per_step": compute / steps,
        "data_share": data / (data + compute),
        "forward_gflop_per_chunk": forward / batch_size / 1e9,
        "train_gflop_per_chunk": total / batch_size / 1e9,
        "compute_gflop_per_s": total * steps / compute / 1e9,
    }, model


def extraction(model, files: list[str], repeats: int) -> dict:
    """Seconds to embed `files` whole, plugin's path vs pyannote.audio's Inference, alternating"""
    from pyannote.audio import Inference
    from pyannote.audio.core.io import Audio

    from pyannote_embloss.inference.embedding import embed_files

    model.eval()
    inference = Inference(model, window="whole")
    methods = {
        "plugin": lambda paths: embed_files(model, paths, progress=False),
        "pyannote": lambda paths: [inference(path) for path in paths],
    }
    for method in methods.values():  # warm-up
        method(files[:1])
    seconds = {method: [] for method in methods}
    for _ in range(repeats):
        for method, embed in methods.items():
            start = time.perf_counter()
            embed(files)
            seconds[method].append(time.perf_counter() - start)
    audio_seconds = sum(Audio().get_duration(path) for path in files)
    return {
        "audio_seconds": audio_seconds,
        "seconds": seconds,
        **{f"rtf_{method}": median(times) / audio_seconds for method, times in seconds.items()},
        "pyannote_over_plugin": median([p / q for p, q in zip(seconds["pyannote"], seconds["plugin"])]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", choices=list(BACKBONES), default=list(BACKBONES),
                        help=f"backbones to measure (all); {REFERENCE}, the reference, is always measured")
    parser.add_argument("--protocol", default=PROTOCOL)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps at the start of each run (3)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per run (10)")
    parser.add_argument("--rounds", type=int, default=2, help="turns over the backbones; medians are kept (2)")
    parser.add_argument("--no-augmentation", action="store_true", help="train without the recipe's augmentation")
    parser.add_argument("--num-files", type=int, default=50, help="test files embedded per backbone (50)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating extraction timings per method (3)")
    parser.add_argument("--output", default=None, help="JSON path (results/benchmarks/backbones.json)")
    args = parser.parse_args()
    set_threads(args.threads)
    names = [REFERENCE] + [name for name in args.backbones if name != REFERENCE]

    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    from pyannote_embloss.data.protocols import get_protocol

    load = os.getloadavg()[0]
    if load > 0.5:
        # with 2 threads on 2 busy cores, torch's threads wait for each other: steps 10 times slower
        print(f"warning: load average {load:.1f}: the machine is busy, the figures will not be representative",
              flush=True)
    start = time.perf_counter()
    peaks = [matmul_peak_gflops()]
    print(f"float32 matmul peak, {args.threads} thread(s): {peaks[0]:.1f} GFLOP/s", flush=True)
    protocol = get_protocol(args.protocol)
    recipe = default_recipe()
    runs, models = {name: [] for name in names}, {}
    for r in range(args.rounds):
        for name in names:
            result, models[name] = train(name, protocol, recipe, args)
            runs[name].append(result)
            print(f"round {r + 1}  {BACKBONES[name][0]:<36} {result['chunks_per_s']:6.1f} chunks/s  "
                  f"{result['s_per_step']:6.2f} s/step  data {100 * result['data_share']:4.1f} % of step", flush=True)

    files = test_files(args.protocol, args.num_files)
    speed = {}
    for name in names:
        speed[name] = extraction(models[name], files, args.repeats)
        print(f"extraction  {BACKBONES[name][0]:<36} RTF plugin {speed[name]['rtf_plugin']:.4f}  "
              f"pyannote.audio Inference {speed[name]['rtf_pyannote']:.4f}", flush=True)
    peaks.append(matmul_peak_gflops())
    peak = max(peaks)

    summary = {}
    for name, results in runs.items():
        s = {key: median([r[key] for r in results]) for key in results[0] if key not in ("steps", "batch_size")}
        s["description"] = BACKBONES[name][0]
        s["architecture"] = {"name": architecture(name, recipe).name, "params": architecture(name, recipe).params}
        s["chunks_per_s_over_reference"] = median(
            [r["chunks_per_s"] / ref["chunks_per_s"] for r, ref in zip(results, runs[REFERENCE])]
        )
        s["compute_share_of_peak"] = s["compute_gflop_per_s"] / peak
        s["step_share_of_peak"] = s["train_gflop_per_chunk"] * s["chunks_per_s"] / peak
        s.update({key: value for key, value in speed[name].items() if key != "seconds"})
        s["extraction_speed_over_reference"] = speed[REFERENCE]["rtf_plugin"] / s["rtf_plugin"]
        summary[name] = s

    batch = runs[REFERENCE][0]["batch_size"]
    print(f"\ntraining: median over {args.rounds} round(s) of {args.steps} timed steps of {batch} chunks of "
          f"{recipe.task.params.get('duration', 2.0):g} s, {recipe.task.params.get('num_workers', 0)} worker(s), "
          f"{args.threads} thread(s), augmentation {'off' if args.no_augmentation else 'on'}; "
          f"matmul peak {peak:.1f} GFLOP/s")
    print(f"  {'backbone':<36}{'params M':>9}{'GFLOP/chunk':>12}{'s/step':>8}{'chunks/s':>9}{'x default':>10}"
          f"{'data %':>7}{'GFLOP/s':>9}{'% peak':>7}")
    for s in summary.values():
        print(f"  {s['description']:<36}{s['parameters'] / 1e6:>9.2f}{s['train_gflop_per_chunk']:>12.2f}"
              f"{s['s_per_step']:>8.2f}{s['chunks_per_s']:>9.1f}{s['chunks_per_s_over_reference']:>10.2f}"
              f"{100 * s['data_share']:>7.1f}{s['compute_gflop_per_s']:>9.1f}{100 * s['compute_share_of_peak']:>7.1f}")
    audio = speed[REFERENCE]["audio_seconds"]
    print(f"\nextraction: {len(files)} test files whole ({audio:.0f} s of audio), median of {args.repeats} repeat(s)")
    print(f"  {'backbone':<36}{'GFLOP/chunk':>12}{'RTF plugin':>11}{'RTF Inference':>14}{'Inference/plugin':>17}"
          f"{'x default':>10}")
    for s in summary.values():
        print(f"  {s['description']:<36}{s['forward_gflop_per_chunk']:>12.2f}{s['rtf_plugin']:>11.4f}"
              f"{s['rtf_pyannote']:>14.4f}{s['pyannote_over_plugin']:>17.2f}{s['extraction_speed_over_reference']:>10.2f}")
    print(f"  wall time {time.perf_counter() - start:.0f} s")
    write_results(
        "backbones",
        {"settings": vars(args), "load_average_at_start": load, "matmul_peak_gflop_per_s": peak, "matmul_peaks_gflop_per_s": peaks,
         "num_files": len(files), "summary": summary, "runs": runs,
         "extraction_seconds": {name: speed[name]["seconds"] for name in names}},
        args.output,
    )


if __name__ == "__main__":
    main()
