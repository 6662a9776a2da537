"""Cut-off frequencies of SincNet's band-pass filters, at initialisation and after training

    python docs/scripts/sinc_cutoffs.py experiments/backbones/sincnet-aam experiments/sincnet/cutoff-lr \
        --output docs/figures/sincnet.cutoffs.png

For each experiment (a SincTDNN with the SincNet front-end, or pyannote.audio's
XVectorSincNet), loads checkpoints/best.ckpt, prints how far each filter's low
and high cut-offs moved from their initial values (pyannote.audio's SincNet
starts from mel-spaced bands, the same for every model), and plots both.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def cutoffs(filterbank) -> np.ndarray:
    """(n_bands, 2) low and high cut-offs in Hz, as asteroid_filterbanks.ParamSincFB computes them"""
    low = filterbank.min_low_hz + torch.abs(filterbank.low_hz_)
    high = torch.clamp(low + filterbank.min_band_hz + torch.abs(filterbank.band_hz_), filterbank.min_low_hz,
                       filterbank.sample_rate / 2)
    return torch.cat([low, high], dim=1).detach().numpy()


def sinc_filterbank(model):
    for module in model.modules():
        if type(module).__name__ == "ParamSincFB":
            return module
    raise SystemExit(f"{type(model).__name__} has no SincNet front-end (no ParamSincFB module)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiments", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, default=None, help="PNG of the cut-offs (default: no plot)")
    args = parser.parse_args(argv)

    from asteroid_filterbanks import ParamSincFB

    from pyannote_embloss.experiment import Experiment
    from pyannote_embloss.inference.loading import load_model

    initial = cutoffs(ParamSincFB(80, 251, sample_rate=16000, min_low_hz=50, min_band_hz=50))
    report = {}
    trained = {}
    for directory in args.experiments:
        model = load_model(Experiment.load(directory), None)
        after = cutoffs(sinc_filterbank(model))
        moved = np.abs(after - initial)
        width = initial[:, 1] - initial[:, 0]
        report[str(directory)] = {
            "median_moved_hz": float(np.median(moved)),
            "max_moved_hz": float(moved.max()),
            "median_moved_of_band_width": float(np.median(moved / width[:, None])),
            "bands_moved_over_10_percent_of_their_width": int(((moved / width[:, None]) > 0.1).any(axis=1).sum()),
        }
        trained[directory.name] = after
    print(json.dumps(report, indent=2))

    if args.output is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(trained), figsize=(5 * len(trained), 4.5), sharey=True, squeeze=False)
        bands = np.arange(len(initial))
        for ax, (name, after) in zip(axes[0], trained.items()):
            ax.fill_between(bands, initial[:, 0], initial[:, 1], color="0.8", step="mid", label="initial (mel)")
            ax.plot(bands, after[:, 0], "b.", label="low cut-off, trained")
            ax.plot(bands, after[:, 1], "r.", label="high cut-off, trained")
            ax.set_yscale("log")
            ax.set_xlabel("filter")
            ax.set_title(name)
        axes[0][0].set_ylabel("frequency (Hz)")
        axes[0][0].legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        args.output.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.output, dpi=100)
        print(f"plot: {args.output}")


if __name__ == "__main__":
    main()
