"""hostwiz core: steps, facts, plans, transports and the apply transaction.

This package never imports Textual or questionary: the front ends in ``screens/``
(Textual and the plain questionary mode) adapt it, and ``hostwiz/`` (the CLI)
ties them together. A test enforces the border.
"""

__version__ = "0.1.0"
