"""Shared knowledge of the host that several steps use: Docker's daemon.json and the one way
to restart dockerd (:mod:`.docker`), sshd's ports (:mod:`.sshd`), subordinate id ranges
(:mod:`.subids`).

Steps never import each other (``tests/unit/test_border.py``); what two of them both need to
know about the host lives here instead.
"""
