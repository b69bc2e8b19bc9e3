"""Registered components. Importing this package registers every built-in component."""
import importlib
import pkgutil

_KINDS = ("encoders", "generators", "readouts", "observations", "priors", "augmentations", "coupling")


def _import_all() -> None:
    for kind in _KINDS:
        package = importlib.import_module(f"{__name__}.{kind}")
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{package.__name__}.{info.name}")


_import_all()
