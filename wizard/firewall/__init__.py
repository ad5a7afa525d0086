"""Firewall zones: the answers, the host's network facts, the zone model and its backends.

``answers`` (what the admin chose) -> ``model.resolve`` (against the host's interfaces) ->
``iptables.render`` / ``nftables.render`` (rules text) -> ``boot`` (the script that loads
them now and at boot). The step itself is :mod:`wizard.steps.firewall`.
"""
