"""The version of vsr (one place; ``vsr.__version__`` re-exports it)."""

__version__ = "0.1.0"
