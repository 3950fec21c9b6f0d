"""Build hook: the wheel ships the repository's top-level ``policies/`` as the package data ``gateway/policies``.

``policies/`` stays at the top of the repository (the security teams review it there); the installed package
finds its copy through ``gateway.interfaces.config.default_policies_dir``. Everything else is declared in
pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

POLICIES = Path(__file__).resolve().parent / "policies"


class BuildPyWithPolicies(build_py):
    """``build_py`` that also copies ``policies/`` into ``gateway/policies`` of the build (not in editable mode:
    an editable install reads the checkout's ``policies/`` directly)."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            self.copy_tree(str(POLICIES), str(Path(self.build_lib) / "gateway" / "policies"))


setup(cmdclass={"build_py": BuildPyWithPolicies})
