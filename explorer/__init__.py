"""Structures Explorer: an interactive explorer of scattering transforms and CNNs.

The computation (``explorer.scattering``, ``explorer.data``, ...) never imports the UI; the Panel app lives
in ``explorer/app.py``. Importing this package is cheap on purpose: it imports nothing heavy.
"""
from explorer.allocator import tune_malloc

__version__ = "0.1.0"

tune_malloc()  # two mallopt calls: large torch temporaries reuse the heap (see allocator.py)
