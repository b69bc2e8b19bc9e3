"""Component registries: one per kind, building components by short name from config dicts.

A config option is a mapping ``{"name": <registered name>, **keyword_arguments}``. Sizes that come
from the data (neuron counts, areas, ...) are injected by the caller at build time and must not be
typed into the config.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, Dict, List, Mapping, Optional


class RegistryError(KeyError):
    """Unknown or duplicate component name, or a bad component config."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


def _where(obj: Any) -> str:
    try:
        return f"{inspect.getsourcefile(obj)}:{inspect.getsourcelines(obj)[1]}"
    except (TypeError, OSError):
        return getattr(obj, "__module__", "?")


# Packages whose import registers the built-in entries, loaded on the first look-up (as plug-ins
# would be): this module stays at the bottom of the layers and imports none of them statically.
BUILTIN_PROVIDERS = ("dsid.modules", "dsid.models")
_BUILTINS_LOADED = False


def load_builtin_components() -> None:
    """Import the built-in providers once so that every built-in component and model is
    registered."""
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        for name in BUILTIN_PROVIDERS:
            importlib.import_module(name)


class Registry:
    """Maps short names to component classes of one kind (``encoder``, ``generator``, ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: ``@ENCODERS.register("bigru")``."""

        def decorator(cls: type) -> type:
            if name in self._entries:
                first = self._entries[name]
                raise RegistryError(
                    f"{self.kind} '{name}' is already registered by {first.__module__}."
                    f"{first.__qualname__} ({_where(first)}); pick another name"
                )
            self._entries[name] = cls
            cls.registry_name = name
            return cls

        return decorator

    def get(self, name: str) -> type:
        load_builtin_components()
        if name not in self._entries:
            raise RegistryError(
                f"unknown {self.kind} '{name}'; known {self.kind} names: {', '.join(self.names())}"
            )
        return self._entries[name]

    def names(self) -> List[str]:
        load_builtin_components()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        load_builtin_components()
        return name in self._entries

    def build(self, cfg: Optional[Mapping[str, Any]], **sizes: Any) -> Any:
        """Build a component from ``cfg`` (``name`` plus keyword arguments) and data-derived
        ``sizes``.

        Sizes the constructor does not accept are dropped, so a caller can offer every size it
        knows.
        """
        if cfg is None:
            raise RegistryError(
                f"no {self.kind} config given; known names: {', '.join(self.names())}"
            )
        cfg = dict(cfg)
        if "name" not in cfg:
            raise RegistryError(
                f"{self.kind} config {cfg} has no 'name'; known: {', '.join(self.names())}"
            )
        name = cfg.pop("name")
        cls = self.get(name)
        params = inspect.signature(cls.__init__).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        clash = sorted(set(cfg) & set(sizes) & set(params))
        if clash:
            raise RegistryError(
                f"{self.kind} '{name}': {clash} come from the data "
                "and must not be set in the config"
            )
        unknown = sorted(k for k in cfg if k not in params and not takes_any)
        if unknown:
            accepted = sorted(k for k in params if k != "self")
            raise RegistryError(
                f"{self.kind} '{name}' does not take {unknown}; it takes {accepted}"
            )
        for (
            key,
            value,
        ) in cfg.items():  # sizes: a negative one is always a mistake, as is an empty state
            if (
                key.endswith("_size")
                and isinstance(value, int)
                and not isinstance(value, bool)
                and (value < 0 or (value == 0 and key == "hidden_size"))
            ):
                raise RegistryError(
                    f"{self.kind} '{name}': {key}={value}: expected a "
                    f"{'positive' if key == 'hidden_size' else 'non-negative'} size"
                )
        kwargs = {k: v for k, v in sizes.items() if k in params or takes_any}
        kwargs.update(cfg)
        return cls(**kwargs)


ENCODERS = Registry("encoder")
GENERATORS = Registry("generator")
COUPLINGS = Registry("coupling")
OBSERVATIONS = Registry("observation")
PRIORS = Registry("prior")
AUGMENTATIONS = Registry("augmentation")
READOUTS = Registry("readout")
MODELS = Registry("model")  # assemblies, selected by ``model.name`` and built by ``from_config``

ALL_REGISTRIES = {
    r.kind: r
    for r in (
        MODELS,
        ENCODERS,
        GENERATORS,
        COUPLINGS,
        OBSERVATIONS,
        PRIORS,
        AUGMENTATIONS,
        READOUTS,
    )
}
