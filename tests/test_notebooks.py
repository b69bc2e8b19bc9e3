"""Notebooks are saved with their outputs (fast check) and run top to bottom (slow set:
`pytest -m slow`)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_saved_with_its_outputs(path):
    """A reader on GitHub sees every result without running anything
    (scripts/execute_notebooks.py)."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), path.name
    counts = [c["execution_count"] for c in code]
    assert counts == sorted(counts), f"{path.name}: cells not run top to bottom"
    assert not [o for c in code for o in c.get("outputs", []) if o.output_type == "error"]
    assert any(o.output_type == "display_data" for c in code for o in c.get("outputs", [])), (
        "no figure"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("DSID_NOTEBOOK_EPOCHS", "2")
    monkeypatch.setenv("DSID_NOTEBOOK_STEPS", "20")
    monkeypatch.setenv("WANDB_MODE", "offline")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert not errors, errors
