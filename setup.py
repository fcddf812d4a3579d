"""setuptools' build, with one step of ours: the gettext catalogs compiled to .mo.

Everything else is declared in setup.cfg and pyproject.toml. The step runs wherever the
project is built (a wheel for the terminal's bundle or the back office, an editable install
in development) and needs Babel, which pyproject.toml's build requirements bring: the
terminal's run time reads the .mo files with the standard library (kiosk/i18n.py) and the
wheel carries no .po.
"""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithCatalogs(build_py):
    def run(self) -> None:
        super().run()
        sys.path.insert(0, str(HERE))  # this checkout's kiosk, not an installed one
        from kiosk.i18n_build import compile_tree

        source = HERE / "kiosk" / "locale"
        if getattr(self, "editable_mode", False):
            compile_tree(source)  # the checkout itself is what runs
        else:
            compile_tree(source, Path(self.build_lib) / "kiosk" / "locale")


# Each command with what it runs. The terminal's bundle builds its wheel from a source with
# the terminal's packages alone (deploy/release/build-bundle.sh): it gets their commands,
# not one naming a package it does not hold (the back office, the simulators).
COMMANDS = {
    "kiosk": "station.cli:main",
    "kiosk-ui": "ui.app:main",
    "kiosk-tool": "firmware_tools.cli:main",
    "kiosk-backoffice": "backoffice.cli:main",
    "kiosk-platform-sim": "simulators.platform.cli:main",
}
SCRIPTS = [
    f"{name} = {target}"
    for name, target in COMMANDS.items()
    if (HERE / target.split(".")[0]).is_dir()
]

setup(cmdclass={"build_py": BuildPyWithCatalogs}, entry_points={"console_scripts": SCRIPTS})
