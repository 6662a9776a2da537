"""Validation metric: equal error rate of development trials"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from pyannote.metrics.binary_classification import det_curve
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat


class TrialEqualErrorRate(Metric):
    """Equal error rate of speaker verification trials, from per-file embeddings

    `update` accumulates the embeddings of development files (in any order,
    over any number of batches); `compute` scores every trial whose two files
    were embedded with cosine similarity and returns the equal error rate
    (pyannote.metrics' `det_curve`).

    Parameters
    ----------
    file1, file2 : (num_trials, ) array-like of int
        Index of each trial's files.
    reference : (num_trials, ) array-like of int
        1 for target trials (same speaker), 0 otherwise.
    """

    is_differentiable: Optional[bool] = False
    higher_is_better: Optional[bool] = False
    full_state_update: bool = False

    def __init__(self, file1, file2, reference, **kwargs):
        super().__init__(compute_on_cpu=True, **kwargs)
        self.register_buffer("file1", torch.as_tensor(np.ascontiguousarray(file1, dtype=np.int64)), persistent=False)
        self.register_buffer("file2", torch.as_tensor(np.ascontiguousarray(file2, dtype=np.int64)), persistent=False)
        self.register_buffer("reference", torch.as_tensor(np.ascontiguousarray(reference, dtype=np.int64)), persistent=False)
        self.add_state("embeddings", default=[], dist_reduce_fx="cat")
        self.add_state("files", default=[], dist_reduce_fx="cat")

    def update(self, embeddings: torch.Tensor, files: torch.Tensor) -> None:
        """Accumulate embeddings

        Parameters
        ----------
        embeddings : (batch, dimension) torch.Tensor
        files : (batch, ) torch.Tensor
            File index of each embedding.
        """
        self.embeddings.append(embeddings.detach().float())
        self.files.append(files.detach().long().reshape(-1))

    def compute(self) -> torch.Tensor:
        embeddings = F.normalize(dim_zero_cat(self.embeddings).cpu(), dim=-1)
        files = dim_zero_cat(self.files).cpu()
        num_files = int(max(self.file1.max(), self.file2.max())) + 1
        row = torch.full((num_files,), -1, dtype=torch.long)
        row[files] = torch.arange(len(files))

        file1, file2 = self.file1.cpu(), self.file2.cpu()
        reference = self.reference.cpu()
        keep = (row[file1] >= 0) & (row[file2] >= 0)
        y_true = reference[keep].numpy()
        if len(np.unique(y_true)) < 2:
            # e.g. Lightning's sanity check embeds a couple of files only
            return torch.tensor(float("nan"))
        scores = (embeddings[row[file1[keep]]] * embeddings[row[file2[keep]]]).sum(dim=-1)
        _, _, _, eer = det_curve(y_true, scores.numpy(), distances=False)
        return torch.tensor(float(eer))
