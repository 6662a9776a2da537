"""Export the embedding network of a checkpoint to ONNX

    pyannote-audio-emb export EXPERIMENT_DIR --output OUT.onnx

The ONNX graph maps ``waveforms`` (batch, 1, samples) float32 at the model's
sample rate (16 kHz) to ``embeddings`` (batch, dimension), with dynamic batch
and sample axes. It holds the embedding network only (no training loss, no
classifier). Inputs shorter than the network's minimum (``min_num_samples``)
are repeated until long enough, as in PyTorch, so any input of at least one
sample works. SincTDNN, ECAPATDNN and WeSpeakerResNet34 export; a model
that cannot be (e.g. LogMelStatistics: ONNX has no quantile) is an
:class:`~pyannote_embloss.errors.ExportError`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from pyannote.audio.core.model import Model

from ..errors import ExportError
from ..io import PathLike, atomic_path

INPUT_NAME = "waveforms"
OUTPUT_NAME = "embeddings"
OPSET = 17


class ExportableEmbedding(torch.nn.Module):
    """Embedding model with its short-input repetition written as tensor operations

    The plugin's models repeat audio shorter than their ``min_num_samples``
    with a Python `if`, which tracing would freeze for the example input.
    Here, every input is gathered with indices ``arange(repeats * num_samples) % num_samples``,
    ``repeats = ceil(min_num_samples / num_samples)`` (1 for long enough
    inputs, for which it is the identity): the ONNX graph repeats short inputs
    exactly as PyTorch does.

    Parameters
    ----------
    model : Model
        Embedding model with a `min_num_samples` attribute (e.g. SincTDNN),
        else inputs are not repeated.
    """

    def __init__(self, model: Model):
        super().__init__()
        self.model = model
        self.min_num_samples = int(getattr(model, "min_num_samples", 1))

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        num_samples = torch._shape_as_tensor(waveforms)[-1]
        repeats = torch.div(num_samples + self.min_num_samples - 1, num_samples, rounding_mode="floor")
        indices = torch.remainder(torch.arange(repeats * num_samples), num_samples)
        return self.model(waveforms.index_select(-1, indices))


def export_onnx(model: Model, path: PathLike, example_duration: float = 2.0) -> Path:
    """Write `model`'s embedding network to ONNX, atomically

    Parameters
    ----------
    model : Model
        Embedding model (its loss, if any, is not exported).
    path : str or Path
        ONNX file to write.
    example_duration : float, optional
        Duration (s) of the example input used for tracing. Defaults to 2.

    Returns
    -------
    path : Path

    Raises
    ------
    ExportError
        When the model cannot be exported (e.g. an operation ONNX has not).
    """
    path = Path(path)
    if getattr(model, "not_exportable", None):
        raise ExportError(f"{type(model).__name__} cannot be exported to ONNX: {model.not_exportable}.")
    was_training = model.training
    model = model.cpu().eval()
    exportable = ExportableEmbedding(model).eval()
    example = torch.randn(2, 1, model.audio.get_num_samples(example_duration))
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            # TracerWarnings about the Python branches of the wrapped model,
            # which the repetition above makes irrelevant
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                exportable,
                (example,),
                str(tmp),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch", 2: "samples"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
    except RuntimeError as error:  # torch.onnx's errors derive from it
        raise ExportError(
            f"{type(model).__name__} cannot be exported to ONNX: {str(error).strip().splitlines()[-1]}"
        ) from error
    finally:
        # torch.onnx.export restores training modes of the *wrapper*'s submodules
        model.train(was_training)
    return path
