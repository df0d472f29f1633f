"""scitaste: the step logic of the Snakemake pipeline. Each step is a module runnable with ``python -m``."""

__version__ = "0.1.0"
