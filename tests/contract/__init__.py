"""Contract tests: one suite of Store assertions, run against every backend in ``conftest.BACKENDS``."""
