"""Your own data, measured: SpeechOcean762 given as a folder tree, a Kaldi directory and a CSV

Builds, from the SpeechOcean762 corpus (all 250 speakers, 2,500 files, linked
not copied), the three inputs a user may have:

    work/speakers/<speaker>/<utterance>.flac     prepare folders
    work/kaldi/{wav.scp,utt2spk}                 prepare kaldi
    work/manifest.csv  (path,speaker)            prepare csv

then runs, in `work` as a new user would (no --database, no --output), each
``pyannote-audio-emb prepare`` command, checks that the three protocols are
the same files, and with ``--train`` the README's three commands::

    pyannote-audio-emb prepare folders --root speakers --name Mine
    pyannote-audio-emb train mine Mine.SpeakerVerification.Default     # default recipe
    pyannote-audio-emb evaluate mine

printing each command's wall time and the test EER.

Usage
-----
    python benchmarks/own_data.py WORK_DIR            # the three prepares (~1 min)
    python benchmarks/own_data.py WORK_DIR --train    # + training and evaluation (~12 min on 2 cores)
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pyannote_embloss.data.protocols.speechocean762 import find_corpus  # noqa: E402

CLI = [sys.executable, "-m", "pyannote_embloss.cli"]


def run(args, cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(CLI + args, cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, "PYANNOTE_METRICS_ENABLED": "0"})
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    print(f"$ pyannote-audio-emb {' '.join(args)}    # {elapsed:.0f} s", flush=True)
    return elapsed, result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path)
    parser.add_argument("--train", action="store_true")
    args = parser.parse_args()
    work = args.work.absolute()
    if work.exists():
        shutil.rmtree(work)
    corpus = find_corpus()
    speakers, wav, utt2spk, csv = work / "speakers", [], [], ["path,speaker"]
    for path in sorted((corpus / "WAVE").glob("SPEAKER*/*")):
        target = speakers / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)
        utt = f"{path.parent.name}-{path.stem}"
        wav.append(f"{utt} {target}\n")
        utt2spk.append(f"{utt} {path.parent.name}\n")
        csv.append(f"speakers/{path.parent.name}/{path.name},{path.parent.name}")
    (work / "kaldi").mkdir()
    (work / "kaldi" / "wav.scp").write_text("".join(wav))
    (work / "kaldi" / "utt2spk").write_text("".join(utt2spk))
    (work / "manifest.csv").write_text("\n".join(csv) + "\n")
    print(f"{len(wav)} files of {len(list(speakers.iterdir()))} speakers in {work}", flush=True)

    outputs = {}
    for fmt, root in (("folders", "speakers"), ("kaldi", "kaldi"), ("csv", "manifest.csv")):
        name = f"Mine{fmt.capitalize()}"
        run(["prepare", fmt, "--root", root, "--name", name, "--no-progress"], work)
        outputs[fmt] = work / "data" / name
    files = sorted(p.name for p in outputs["folders"].iterdir() if p.is_file() and p.name != "database.yml")
    same = all(filecmp.cmp(outputs["folders"] / f, outputs[other] / f, shallow=False)
               for other in ("kaldi", "csv") for f in files)
    print(f"the three protocols are {'the same' if same else 'DIFFERENT'}: {', '.join(files)}")
    for subset in ("train", "development", "test"):
        lines = (outputs["folders"] / f"{subset}.lst").read_text().splitlines()
        rttm = (outputs["folders"] / f"{subset}.rttm").read_text().split("\n")
        num_speakers = len({line.split()[7] for line in rttm if line})
        trials = outputs["folders"] / f"{subset}.trial"
        num_trials = len(trials.read_text().splitlines()) if trials.exists() else 0
        print(f"  {subset}: {num_speakers} speakers, {len(lines)} files, {num_trials} trials")
    if not args.train:
        return
    run(["train", "mine", "MineFolders.SpeakerVerification.Default", "--no-progress"], work)
    _, output = run(["evaluate", "mine", "--no-progress"], work)
    print(output)


if __name__ == "__main__":
    main()
