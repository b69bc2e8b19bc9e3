"""One source for every default: an option file in ``configs/<group>/`` that sets a component's
argument must agree with the default of the component's constructor, so that a model built from
YAML and one built in Python with the same name are the same model."""

import inspect
from pathlib import Path

import yaml

from dsid.registry import ALL_REGISTRIES
from dsid.runs.config import config_dir

GROUP_KIND = {
    "encoder": "encoder",
    "generator": "generator",
    "readout": "readout",
    "observation": "observation",
    "prior": "prior",
    "coupling": "coupling",
    "augmentation": "augmentation",
}


def constructor_defaults(cls) -> dict:
    """Every keyword default of ``cls`` and of the bases its ``**kwargs`` pass on to (the first
    class in the MRO that names an argument sets its default)."""
    out = {}
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            for p in inspect.signature(klass.__init__).parameters.values():
                if p.default is not inspect.Parameter.empty:
                    out.setdefault(p.name, p.default)
    return out


def component_entries(group: str, cfg):
    """The component configs (dicts with ``name``) an option file of ``group`` holds."""
    if group == "augmentation":
        return list(((cfg or {}).get("model") or {}).get("augmentations") or [])
    return [cfg] if isinstance(cfg, dict) and "name" in cfg else []


def disagreements(configs: Path):
    """``file: name.key = yaml value, constructor default`` for every option value that differs from
    its constructor's default."""
    found = []
    for group, kind in GROUP_KIND.items():
        for f in sorted((configs / group).glob("*.yaml")):
            for entry in component_entries(group, yaml.safe_load(f.read_text())):
                defaults = constructor_defaults(ALL_REGISTRIES[kind].get(entry["name"]))
                for key, value in entry.items():
                    if key != "name" and key in defaults and defaults[key] != value:
                        found.append(
                            f"{group}/{f.name}: {entry['name']}.{key} = {value!r} in YAML, "
                            f"{defaults[key]!r} in the constructor"
                        )
    return found


def test_option_files_agree_with_constructor_defaults():
    found = disagreements(config_dir())
    assert found == [], "defaults set in two places that disagree:\n" + "\n".join(found)


def test_every_group_is_checked():
    groups = {p.name for p in config_dir().iterdir() if p.is_dir()}
    assert set(GROUP_KIND) <= groups  # a renamed group would silently skip the check


def test_a_disagreeing_option_file_is_reported(tmp_path):
    (tmp_path / "generator").mkdir()
    (tmp_path / "generator" / "lfads.yaml").write_text(
        "name: lfads\nhidden_size: 7\ndropout: 0.1\n"
    )
    (tmp_path / "augmentation").mkdir()
    (tmp_path / "augmentation" / "cd.yaml").write_text(
        "model:\n  augmentations:\n    - name: coordinated_dropout\n      rate: 0.99\n"
    )
    found = disagreements(tmp_path)
    assert len(found) == 2
    assert any(
        "generator/lfads.yaml: lfads.hidden_size = 7 in YAML, 64 in the constructor" in f
        for f in found
    )
    assert any("coordinated_dropout.rate = 0.99" in f for f in found)
