"""The composition root, the CLI and the config file: the only importer of adapters and infra."""
