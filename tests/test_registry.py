import pytest

from dsid.registry import Registry, RegistryError


def make_registry():
    reg = Registry("widget")

    @reg.register("small")
    class Small:
        def __init__(self, *, size: int, scale: float = 1.0):
            self.size, self.scale = size, scale

    return reg, Small


def test_build_injects_sizes_and_config_kwargs():
    reg, Small = make_registry()
    w = reg.build({"name": "small", "scale": 2.0}, size=5, unrelated=3)
    assert isinstance(w, Small) and w.size == 5 and w.scale == 2.0
    assert reg.names() == ["small"] and "small" in reg


def test_duplicate_name_says_where_the_first_lives():
    reg, Small = make_registry()
    with pytest.raises(RegistryError) as err:
        reg.register("small")(type("Other", (), {}))
    assert "already registered" in str(err.value) and "Small" in str(err.value)
    assert "test_registry.py" in str(err.value)


def test_unknown_name_lists_known_names():
    reg, _ = make_registry()
    with pytest.raises(RegistryError, match="unknown widget 'big'; known widget names: small"):
        reg.build({"name": "big"})


def test_bad_configs_are_explained():
    reg, _ = make_registry()
    with pytest.raises(RegistryError, match="has no 'name'"):
        reg.build({"scale": 1.0}, size=1)
    with pytest.raises(RegistryError, match="does not take \\['colour'\\]"):
        reg.build({"name": "small", "colour": "red"}, size=1)
    with pytest.raises(RegistryError, match="come from the data"):
        reg.build({"name": "small", "size": 3}, size=1)


def test_version_flag(capsys):
    import dsid
    from dsid.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"dsid {dsid.__version__}"
