"""``prepare csv`` on large manifests: time and memory against the number of lines

A synthetic manifest of N lines (N/100 speakers of 100 files each, whole
files, durations given: headers are not read, audio is never decoded; the
files exist but are empty) is turned into a protocol by ``prepare csv``
(``pyannote_embloss.data.protocols.prepare_corpus("csv", ...)``: reading,
checking that files exist, uris, 80/10/10 split, trials capped at 20,000,
lists, RTTM, UEM, one audio link per file, database.yml), for each N of
`--sizes`, each in a fresh Python process that reports its wall time and its
peak resident memory (``ru_maxrss``) next to its memory once imports are done.
Making the files and the manifest is not timed. time(N) / time(previous N)
next to N / previous N: equal ratios mean linear growth.

Usage
-----
    python benchmarks/prepare_manifest.py                        # 10^4, 10^5, 10^6 (~10 min, ~5 GB of disk inodes)
    python benchmarks/prepare_manifest.py --sizes 10000 100000   # ~1 minute
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
from pyannote_embloss.data.protocols import prepare_corpus
manifest, output = sys.argv[1], sys.argv[2]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
prepare_corpus("csv", root=manifest, name="Synthetic", output_dir=output, register_in_cwd=False)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "imports_mb": before}))
"""


def make_corpus(directory: Path, size: int) -> Path:
    """N empty files in N/100 speaker folders, and a CSV manifest with their durations"""
    per_speaker = 100
    lines = ["path,speaker,duration"]
    for s in range(size // per_speaker):
        folder = directory / "audio" / f"spk{s:06d}"
        folder.mkdir(parents=True)
        for u in range(per_speaker):
            name = f"{u:03d}.wav"
            (folder / name).touch()
            lines.append(f"audio/spk{s:06d}/{name},spk{s:06d},{3.0 + (u % 7) * 0.5}")
    manifest = directory / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--tmp", default=None, help="Where to make the synthetic corpora (default: system temp).")
    args = parser.parse_args()
    rows, previous = [], None
    for size in args.sizes:
        directory = Path(tempfile.mkdtemp(prefix=f"manifest-{size}-", dir=args.tmp))
        try:
            manifest = make_corpus(directory, size)
            result = subprocess.run(
                [sys.executable, "-c", CHILD, str(manifest), str(directory / "protocol")],
                capture_output=True, text=True, env={**os.environ, "PYANNOTE_METRICS_ENABLED": "0"},
            )
            if result.returncode != 0:
                sys.exit(result.stderr[-3000:])
            measure = json.loads(result.stdout.strip().splitlines()[-1])
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        ratio = "" if previous is None else (
            f"  time x{measure['seconds'] / previous[1]['seconds']:.1f} for size x{size / previous[0]:.0f}"
        )
        print(f"{size:>9,} lines: {measure['seconds']:8.1f} s, peak {measure['peak_mb']:7.0f} MB "
              f"(imports {measure['imports_mb']:.0f} MB){ratio}", flush=True)
        rows.append((size, measure))
        previous = (size, measure)


if __name__ == "__main__":
    main()
