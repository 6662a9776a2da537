"""Markdown table of evaluated experiments under test conditions, cosine and PLDA, with 95 % intervals

    python docs/scripts/condition_table.py experiments/softmax experiments/aam ... [--condition channel --condition telephone]

Reads each experiment's results/<protocol>.test.json (written by `evaluate` or `compare` with
--condition ...); an experiment not evaluated under a condition shows "—".
"""

import argparse
import json
from pathlib import Path

PROTOCOL = "SpeechOcean762.SpeakerVerification.Default"


def cell(metrics) -> str:
    if metrics is None:
        return "—"
    low, high = metrics["ci"]["eer"]
    return f"{100 * metrics['eer']:.2f} [{100 * low:.2f}, {100 * high:.2f}]"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("experiments", nargs="+")
    parser.add_argument("--condition", action="append", default=None)
    parser.add_argument("--protocol", default=PROTOCOL)
    args = parser.parse_args()
    conditions = args.condition or ["channel", "telephone"]
    header = ["system", "clean", "clean, PLDA"]
    for c in conditions:
        header += [f"`{c}`", f"`{c}`, PLDA"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for experiment in args.experiments:
        path = Path(experiment) / "results" / f"{args.protocol}.test.json"
        if not path.is_file():
            continue
        results = json.loads(path.read_text())
        row = [f"`{Path(experiment).name}`", cell(results), cell(results.get("normalized", {}).get("plda"))]
        for c in conditions:
            metrics = results.get("conditions", {}).get(c)
            row += [cell(metrics), cell(None if metrics is None else metrics.get("normalized", {}).get("plda"))]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
