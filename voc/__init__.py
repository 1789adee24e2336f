"""voc: the core package — models, settings, storage, ingestion, masking, knowledge base, CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("voc-agents")
except PackageNotFoundError:  # a checkout used without installing
    __version__ = "0.0.0+local"
