"""Train an experiment (as `pyannote-audio-emb train` does) and record a digest of every batch, per rank

    python train_recording_batches.py EXPERIMENT_DIR DATABASE_YML OUTPUT_DIR [train() keyword=value ...]

Lightning's DDP launcher runs this very script again for every other rank,
so each rank writes OUTPUT_DIR/batches.rank<global rank>.json.
"""

import json
import sys
from pathlib import Path

from lightning import Callback

from pyannote_embloss.experiment import Experiment
from pyannote_embloss.training.run import train


class RecordBatches(Callback):
    def __init__(self, output: Path):
        self.output = output
        self.batches = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append({"labels": batch["y"].tolist(), "sum": float(batch["X"].double().sum())})

    def on_train_end(self, trainer, pl_module):
        path = self.output / f"batches.rank{trainer.global_rank}.json"
        path.write_text(json.dumps({"world_size": trainer.world_size, "batches": self.batches}))


if __name__ == "__main__":
    experiment, database, output = sys.argv[1:4]
    options = {}
    for argument in sys.argv[4:]:
        key, value = argument.split("=", 1)
        options[key] = int(value) if value.isdigit() else value
    Path(output).mkdir(parents=True, exist_ok=True)
    train(Experiment.load(experiment), database=database, progress_bar=False, overwrite=True,
          callbacks=[RecordBatches(Path(output))], **options)
