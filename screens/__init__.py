"""Front ends of hostwiz: the Textual wizard (screens.app) and plain prompts (screens.plain).

Both only collect answers and show results; the work itself is done by :mod:`wizard.session`.
"""
