"""adatad: end-to-end temporal action detection (AdaTAD) in plain PyTorch."""

__version__ = "0.1.0"
