"""Validation metric: equal error rate of development trials

It scores trials exactly as ``pyannote-audio-emb evaluate --subset development``
does (:meth:`Trials.score`, raw cosine, and :func:`equal_error_rate`), from
embeddings computed by the same function (:func:`iter_embeddings`, whole
files), so that the checkpoint kept as ``best.ckpt`` is selected by the very
number the evaluation reports.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from pyannote.metrics.binary_classification import det_curve
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from ..evaluation.metrics import equal_error_rate
from ..evaluation.trials import Trials


class TrialEqualErrorRate(Metric):
    """Equal error rate of speaker verification trials, from per-file embeddings

    `update` accumulates the embeddings of development files (in any order,
    over any number of batches, and, under DDP, gathered from every process);
    `compute` scores every trial whose two files were embedded and returns
    the equal error rate.

    Parameters
    ----------
    trials : Trials
        Development trials; `update` receives indices into `trials.uris`.
    """

    is_differentiable: Optional[bool] = False
    higher_is_better: Optional[bool] = False
    full_state_update: bool = False

    def __init__(self, trials: Trials, **kwargs):
        super().__init__(compute_on_cpu=True, **kwargs)
        self.trials = trials
        self.add_state("embeddings", default=[], dist_reduce_fx="cat")
        self.add_state("files", default=[], dist_reduce_fx="cat")

    def update(self, embeddings: torch.Tensor, files: torch.Tensor) -> None:
        """Accumulate embeddings

        Parameters
        ----------
        embeddings : (batch, dimension) torch.Tensor
        files : (batch, ) torch.Tensor
            Index (in `trials.uris`) of the file of each embedding.
        """
        self.embeddings.append(torch.as_tensor(embeddings).detach().float())
        self.files.append(torch.as_tensor(files).detach().long().reshape(-1))

    def compute(self) -> torch.Tensor:
        embeddings = dim_zero_cat(self.embeddings).cpu().numpy().astype(np.float32)
        files = dim_zero_cat(self.files).cpu().numpy()
        embedded = np.zeros(self.trials.num_files, dtype=bool)
        embedded[files] = True
        keep = embedded[self.trials.index1] & embedded[self.trials.index2]
        trials = self.trials.subset(keep)
        if len(np.unique(trials.reference)) < 2:
            # e.g. Lightning's sanity check embeds a couple of files only
            return torch.tensor(float("nan"), dtype=torch.float64)
        matrix = np.ones((self.trials.num_files, embeddings.shape[1]), dtype=np.float32)
        matrix[files] = embeddings  # duplicates (padded distributed sampler) carry the same embedding
        scores = trials.score(matrix)
        fpr, fnr, _, _ = det_curve(trials.reference, scores, distances=False)
        eer, _ = equal_error_rate(fpr, fnr)
        return torch.tensor(eer, dtype=torch.float64)
