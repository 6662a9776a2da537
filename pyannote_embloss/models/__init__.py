"""Speaker embedding architectures, by name

Checkpoints store each model's ``module.Class`` path: keep these paths stable.
"""

from ..errors import ConfigError
from .logmel import LogMelStatistics
from .sinctdnn import SincTDNN

ARCHITECTURES = {"SincTDNN": SincTDNN, "LogMelStatistics": LogMelStatistics}


def is_trainable(architecture) -> bool:
    """Whether an architecture (class) has anything to train"""
    return bool(getattr(architecture, "trainable", True))


def get_architecture(name: str):
    """Architecture class from its name

    Parameters
    ----------
    name : str
        Architecture name, e.g. "SincTDNN", or a fully qualified "module.Class"
        path to any pyannote.audio Model subclass.

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
            return getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"Cannot import architecture '{name}': {e}") from e
    raise ConfigError(
        f"Unknown architecture '{name}'. Known architectures: {', '.join(sorted(ARCHITECTURES))} "
        "(or a fully qualified 'module.Class' path)."
    )


__all__ = ["SincTDNN", "LogMelStatistics", "ARCHITECTURES", "get_architecture", "is_trainable"]
