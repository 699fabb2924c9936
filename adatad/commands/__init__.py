"""The ``adatad`` sub-commands, one module each, every one with ``main(argv) -> exit status``.

These modules import nothing heavy at module level (argument parsing must not import torch, so that
``--help`` is instant); the work is imported inside ``main``. Library code never imports them.
"""
