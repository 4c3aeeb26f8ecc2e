"""Structures Explorer: an interactive explorer of scattering transforms and CNNs.

The computation (``explorer.scattering``, ``explorer.data``, ...) never imports the UI; the Panel app lives
in ``explorer/app.py``. Importing this package is cheap on purpose: it imports nothing heavy.
"""

__version__ = "0.1.0"
