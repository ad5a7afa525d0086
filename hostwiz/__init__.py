"""The ``hostwiz`` command: ties the core (wizard/), the lab and the two front ends together."""
