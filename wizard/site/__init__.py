"""Sites: several hosts, one reviewed change.

A :class:`~wizard.site.model.Site` names hosts and their roles; site steps
(:class:`~wizard.site.step.SiteStep`) plan for several hosts at once and in stages; the apply
is one commit-confirmed transaction per host and stage, hosts of a stage in parallel, stages in
order, and a failure puts every host back in reverse order (:mod:`wizard.site.apply`).
"""
