"""GPU readiness: training and extraction throughput against pyannote.audio's own, bf16 on and off

Side by side in one run, on one device (``--device``, CUDA when there is one):

* **training** chunks/s, for each network -- the default recipe's SincTDNN
  (``experiments/aam``'s architecture) and ``WeSpeakerResNet34`` -- trained
  by pyannote.audio's ``SupervisedRepresentationLearningWithArcFace`` and by
  the plugin's ``aam`` task, on the same network, batch (speakers x chunks of
  ``--duration`` s), optimizer (Adam 1e-3) and Lightning settings, each in
  float32 (``32-true``) and in ``bf16-mixed``; with the peak device memory of
  each run (CUDA: ``torch.cuda.max_memory_allocated``; on the CPU, none);
* **extraction** files/s of whole files, the plugin's path
  (``pyannote_embloss.inference.embedding.embed_files``: what ``evaluate`` and ``apply``
  run) against pyannote.audio's ``Inference(window="whole")``, same model,
  device and files.

Runs alternate in ``--rounds`` rounds (medians kept), so that a busy machine
slows every system alike. Ratios: plugin / pyannote.audio (same precision),
bf16 / float32 (same task), plugin / ``Inference``.

The audio is synthetic (no download, no corpus): each speaker is a harmonic
voice of its own fundamental frequency and formants, under white noise, with
a random pitch contour per file; files are 16 kHz WAV written to a temporary
folder, read by a protocol that the plugin's ``ProtocolWriter`` writes. The
figures are speed and memory, not accuracy.

Usage
-----
    python benchmarks/gpu.py                                  # on the GPU: ~5 minutes
    python benchmarks/gpu.py --device cuda:1 --speakers 128 --num-workers 8
    python benchmarks/gpu.py --device cpu --tiny              # checks the script (the test suite runs it)

Writes results/benchmarks/gpu.json (``--output``) with the machine facts.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import REPOSITORY, median, peak_rss_mb, write_results

NETWORKS = ("SincTDNN", "WeSpeakerResNet34")
TASKS = ("pyannote", "plugin")
PRECISIONS = ("32-true", "bf16-mixed")
SAMPLE_RATE = 16000


def synthetic_corpus(root: Path, num_speakers: int, files_per_speaker: int, duration: float, seed: int = 0) -> Path:
    """database.yml of Synthetic.SpeakerVerification.Default: harmonic voices under noise, as WAV files"""
    import numpy as np
    import torch
    from torchcodec.encoders import AudioEncoder

    from pyannote_embloss.data.protocols.writer import ProtocolWriter, Utterance, with_durations

    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * SAMPLE_RATE)) / SAMPLE_RATE
    utterances = []
    for s in range(num_speakers):
        f0 = 90.0 + 160.0 * s / max(1, num_speakers - 1)  # 90 to 250 Hz
        formants = rng.uniform([400, 1100, 2300], [900, 1900, 3200])
        for f in range(files_per_speaker):
            contour = f0 * (1.0 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t + rng.uniform(0, 6.3)))
            phase = 2 * np.pi * np.cumsum(contour) / SAMPLE_RATE
            voice = sum(
                np.exp(-(((k * contour) - formants[:, None]) ** 2).min(axis=0) / (2 * 150.0**2)) * np.sin(k * phase)
                for k in range(1, 25)
            )
            audio = 0.1 * voice / np.abs(voice).max() + 0.01 * rng.standard_normal(t.size)
            path = root / "audio" / f"spk{s:03d}" / f"{f:02d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            AudioEncoder(torch.from_numpy(audio[None]).float(), sample_rate=SAMPLE_RATE).to_file(str(path))
            utterances.append(Utterance(f"spk{s:03d}/{f:02d}", f"spk{s:03d}", path))
    utterances = with_durations(utterances, progress=False)
    writer = ProtocolWriter(root / "protocol", "Synthetic")
    writer.add_subset("train", utterances)
    writer.add_protocol("SpeakerVerification", "Default", train="train")
    return writer.write()


def network(name: str, task):
    """The default recipe's SincTDNN (experiments/aam's architecture section), or WeSpeakerResNet34"""
    from pyannote_embloss.experiment import Experiment
    from pyannote_embloss.models import WeSpeakerResNet34
    from pyannote_embloss.training.run import build_model

    if name == "WeSpeakerResNet34":
        return WeSpeakerResNet34(task=task)
    return build_model(Experiment.load(REPOSITORY / "experiments" / "aam").config.architecture, task)


def make_task(kind: str, protocol, args):
    """pyannote.audio's ArcFace task, or the plugin's aam task, with the same batches"""
    common = dict(
        duration=args.duration,
        num_classes_per_batch=args.speakers,
        num_chunks_per_class=args.chunks,
        num_workers=args.num_workers,
    )
    if kind == "pyannote":
        from pyannote.audio.tasks import SupervisedRepresentationLearningWithArcFace

        class BuiltinArcFace(SupervisedRepresentationLearningWithArcFace):
            # pyannote.audio 4.0.7 cannot cache the trials of a database.yml protocol (PicklingError);
            # validation is off here anyway
            def prepare_validation(self, prepared_dict):
                pass

        return BuiltinArcFace(protocol, margin=0.2, scale=32.0, **common)
    from pyannote_embloss.tasks import get_task_class

    return get_task_class("aam")(protocol, margin=0.2, scale=32.0, batches_per_epoch=10_000, **common)


def train_run(name: str, kind: str, precision: str, protocol, args) -> dict:
    """Chunks/s of `args.steps` timed steps (after `args.warmup`), and the peak device memory"""
    import torch
    from lightning import Trainer, seed_everything
    from lightning.pytorch.callbacks import Callback

    from pyannote_embloss.config import OptimizerConfig
    from pyannote_embloss.training.run import configure_optimizer

    class StepTimer(Callback):
        def __init__(self):
            self.start, self.steps = None, 0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == args.warmup:
                if args.cuda:
                    torch.cuda.synchronize()
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx >= args.warmup:
                self.steps += 1

    seed_everything(0, verbose=False)
    model = network(name, make_task(kind, protocol, args))
    configure_optimizer(model, OptimizerConfig("Adam", {"lr": 1e-3}))
    timer = StepTimer()
    trainer = Trainer(
        accelerator="gpu" if args.cuda else "cpu",
        devices=[args.device_index] if args.cuda else 1,
        precision=precision,
        max_steps=args.warmup + args.steps,
        callbacks=[timer],
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    if args.cuda:
        torch.cuda.reset_peak_memory_stats(args.device)
    trainer.fit(model)
    if args.cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - timer.start
    return {
        "chunks_per_s": timer.steps * args.speakers * args.chunks / elapsed,
        "peak_device_mb": torch.cuda.max_memory_allocated(args.device) / 2**20 if args.cuda else None,
        "steps": timer.steps,
    }


def extraction_run(name: str, paths: list, args) -> dict:
    """Files/s of the plugin's extraction and of pyannote.audio's Inference, in turns, same model and files"""
    import numpy as np
    import torch
    from pyannote.audio import Inference

    from pyannote_embloss.inference.embedding import embed_files

    from pyannote.audio.core.task import Problem, Resolution, Specifications

    torch.manual_seed(0)
    model = network(name, None)
    model.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=args.duration)
    model = model.eval().to(args.device)

    def plugin():
        with torch.inference_mode():
            return embed_files(model, paths, progress=False)

    def pyannote():
        inference = Inference(model, window="whole", device=torch.device(args.device))
        return np.stack([inference(path) for path in paths])

    results = {}
    for method, run in (("plugin", plugin), ("pyannote", pyannote)):
        run()  # warm-up: kernels, caches
        if args.cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        results[method] = run()
        if args.cuda:
            torch.cuda.synchronize()
        results[f"{method}_files_per_s"] = len(paths) / (time.perf_counter() - start)
    cosine = (results["plugin"] * results["pyannote"]).sum(1) / (
        np.linalg.norm(results["plugin"], axis=1) * np.linalg.norm(results["pyannote"], axis=1)
    )
    return {
        "plugin_files_per_s": results["plugin_files_per_s"],
        "pyannote_files_per_s": results["pyannote_files_per_s"],
        "min_cosine_plugin_vs_pyannote": float(cosine.min()),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cuda, cuda:N or cpu (default: cuda when available)")
    parser.add_argument("--speakers", type=int, default=64, help="speakers per batch (64)")
    parser.add_argument("--chunks", type=int, default=2, help="chunks per speaker (2)")
    parser.add_argument("--duration", type=float, default=2.0, help="chunk duration, s (2.0)")
    parser.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (4 on a GPU, 0 on the CPU)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of each run (3)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps of each run (20)")
    parser.add_argument("--rounds", type=int, default=2, help="turns of every training run (2)")
    parser.add_argument("--num-files", type=int, default=200, help="files embedded by each extraction (200)")
    parser.add_argument("--file-duration", type=float, default=8.0, help="seconds of each synthetic file (8)")
    parser.add_argument("--tiny", action="store_true", help="a few small steps and files: checks the script, not the device")
    parser.add_argument("--output", default=None, help="JSON path (results/benchmarks/gpu.json)")
    args = parser.parse_args(argv)

    import logging
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    for logger in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    if args.tiny:
        args.speakers, args.chunks, args.duration, args.warmup, args.steps = 4, 1, 1.0, 1, 2
        args.rounds, args.num_files, args.file_duration = 1, 4, 3.0
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.cuda = torch.device(args.device).type == "cuda"
    if args.cuda and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device.")
    args.device_index = torch.device(args.device).index or 0
    if args.num_workers is None:
        args.num_workers = 4 if args.cuda else 0
    device_name = torch.cuda.get_device_name(args.device) if args.cuda else "cpu"

    from pyannote_embloss.data.protocols import get_protocol

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="embloss-gpu-") as tmp:
        files_per_speaker = max(2, -(-args.num_files // args.speakers))
        yml = synthetic_corpus(Path(tmp), args.speakers, files_per_speaker, args.file_duration)
        protocol = get_protocol("Synthetic.SpeakerVerification.Default", database_yml=yml)
        paths = sorted(str(p) for p in Path(tmp, "audio").rglob("*.wav"))[: args.num_files]

        runs = {f"{n}/{k}/{p}": [] for n in NETWORKS for k in TASKS for p in PRECISIONS}
        for r in range(args.rounds):
            for key in runs:
                result = train_run(*key.split("/"), protocol, args)
                runs[key].append(result)
                memory = "" if result["peak_device_mb"] is None else f"  peak {result['peak_device_mb']:8.0f} MB"
                print(f"round {r + 1}  train  {key:<40} {result['chunks_per_s']:8.1f} chunks/s{memory}", flush=True)
        extraction = {}
        for name in NETWORKS:
            extraction[name] = extraction_run(name, paths, args)
            e = extraction[name]
            print(f"extract {name:<22} plugin {e['plugin_files_per_s']:7.1f} files/s   "
                  f"pyannote Inference {e['pyannote_files_per_s']:7.1f} files/s", flush=True)

    training = {
        key: {
            "chunks_per_s": median([r["chunks_per_s"] for r in results]),
            "peak_device_mb": None if results[0]["peak_device_mb"] is None else max(r["peak_device_mb"] for r in results),
        }
        for key, results in runs.items()
    }

    def ratio(numerator: str, denominator: str) -> float:
        return median([a["chunks_per_s"] / b["chunks_per_s"] for a, b in zip(runs[numerator], runs[denominator])])

    ratios = {}
    for n in NETWORKS:
        for p in PRECISIONS:
            ratios[f"{n}: plugin / pyannote, {p}"] = ratio(f"{n}/plugin/{p}", f"{n}/pyannote/{p}")
        for k in TASKS:
            ratios[f"{n}: bf16-mixed / 32-true, {k}"] = ratio(f"{n}/{k}/bf16-mixed", f"{n}/{k}/32-true")
        ratios[f"{n}: extraction, plugin / Inference"] = (
            extraction[n]["plugin_files_per_s"] / extraction[n]["pyannote_files_per_s"]
        )

    print(f"\n{device_name}: medians over {args.rounds} round(s) of {args.steps} timed steps, "
          f"{args.speakers} x {args.chunks} chunks of {args.duration:g} s, {args.num_workers} worker(s)")
    for key, value in training.items():
        memory = "" if value["peak_device_mb"] is None else f"   peak {value['peak_device_mb']:8.0f} MB"
        print(f"  {key:<40} {value['chunks_per_s']:8.1f} chunks/s{memory}")
    for key, value in ratios.items():
        print(f"  {key:<48} {value:6.2f}")
    print(f"  wall time {time.perf_counter() - start:.0f} s, peak RSS {peak_rss_mb():.0f} MB")
    settings = {k: v for k, v in vars(args).items() if k not in ("cuda",)}
    return write_results(
        "gpu",
        {"device": device_name, "settings": settings, "training": training, "extraction": extraction, "ratios": ratios},
        args.output,
    )


if __name__ == "__main__":
    main()
