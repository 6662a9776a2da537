"""Speaker embedding architectures, by name

Checkpoints store each model's ``module.Class`` path: keep these paths stable.
"""

from .sinctdnn import SincTDNN

ARCHITECTURES = {"SincTDNN": SincTDNN}


def get_architecture(name: str):
    """Architecture class from its name

    Parameters
    ----------
    name : str
        Architecture name, e.g. "SincTDNN", or a fully qualified "module.Class"
        path to any pyannote.audio Model subclass.

    Raises
    ------
    ValueError
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
            raise ValueError(f"Cannot import architecture '{name}': {e}") from e
    raise ValueError(
        f"Unknown architecture '{name}'. Known architectures: {', '.join(sorted(ARCHITECTURES))} "
        "(or a fully qualified 'module.Class' path)."
    )


__all__ = ["SincTDNN", "ARCHITECTURES", "get_architecture"]
