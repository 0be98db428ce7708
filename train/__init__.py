"""Models, data and training (needs the ``train`` extra: torch).

Submodules import torch; this package file does not, so configs can be read without it.
"""
