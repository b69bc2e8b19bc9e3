"""Run every notebook top to bottom in notebooks/ and save it with its outputs (what readers see on
GitHub). Their working files go to notebooks/*_outputs/ (ignored by git).

    .venv/bin/python scripts/execute_notebooks.py [notebooks/01_quickstart.ipynb ...]
"""

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def main(paths) -> int:
    for path in paths or sorted((ROOT / "notebooks").glob("*.ipynb")):
        path = Path(path)
        t0 = time.time()
        nb = nbformat.read(path, as_version=4)
        NotebookClient(
            nb,
            timeout=1200,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
        nbformat.write(nb, path)
        print(f"{path.name}: {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
