"""customs-gateway: the interagency data-exchange gateway of a customs administration."""

__version__ = "0.1.0"
