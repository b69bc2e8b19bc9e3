"""Build hook: the wheel ships ``configs/`` (experiments included) inside the package, as
``dsid/configs``, so an installed ``dsid`` composes its configs without this repository."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithConfigs(build_py):
    def run(self):
        super().run()
        dest = Path(self.build_lib) / "dsid" / "configs"
        if dest.exists():
            shutil.rmtree(dest)
        # symlinks=False: configs/experiment (a link to experiments/) is copied as a folder
        shutil.copytree(Path(__file__).parent / "configs", dest, symlinks=False)


setup(cmdclass={"build_py": BuildWithConfigs})
