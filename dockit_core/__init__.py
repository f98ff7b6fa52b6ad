"""dockit: what a program really did, from its system calls."""

__version__ = "0.1.0"
