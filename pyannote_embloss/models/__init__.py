"""Speaker embedding architectures, by name

Checkpoints store each model's ``module.Class`` path: keep these paths stable.
"""

from ..config import ARCHITECTURES as REGISTRY
from ..config import resolve
from ..errors import ConfigError
from .ecapa import ECAPATDNN
from .logmel import LogMelStatistics
from .sinctdnn import SincTDNN
from .wespeaker import PyannoteWeSpeakerResNet34, WeSpeakerResNet34

#: the architecture classes, by name: config.ARCHITECTURES (the registry) resolved
ARCHITECTURES = {name: resolve(path) for name, path in REGISTRY.items()}

#: pyannote.audio classes replaced by the plugin's subclass of them (same hyper-parameters and
#: weights; safe on short audio, exportable to ONNX), wherever the plugin builds or loads one
UPGRADES = {PyannoteWeSpeakerResNet34: WeSpeakerResNet34}


def is_trainable(architecture) -> bool:
    """Whether an architecture (class) has anything to train"""
    return bool(getattr(architecture, "trainable", True))


def get_architecture(name: str):
    """Architecture class from its name

    Parameters
    ----------
    name : str
        Architecture name, e.g. "SincTDNN", or a fully qualified "module.Class"
        path to any pyannote.audio Model subclass (pyannote.audio's
        WeSpeakerResNet34 gives the plugin's subclass of it: see :data:`UPGRADES`).

    Raises
    ------
    ConfigError
        When `name` is unknown, listing the known names.
    """
    if name in ARCHITECTURES:
        return ARCHITECTURES[name]
    if "." in name:
        import importlib

        module_name, class_name = name.rsplit(".", 1)
        try:
            Klass = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"Cannot import architecture '{name}': {e}") from e
        return UPGRADES.get(Klass, Klass)
    raise ConfigError(
        f"Unknown architecture '{name}'. Known architectures: {', '.join(sorted(ARCHITECTURES))} "
        "(or a fully qualified 'module.Class' path)."
    )


__all__ = [
    "SincTDNN",
    "ECAPATDNN",
    "WeSpeakerResNet34",
    "LogMelStatistics",
    "ARCHITECTURES",
    "UPGRADES",
    "get_architecture",
    "is_trainable",
]
