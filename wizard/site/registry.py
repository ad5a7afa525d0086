"""The registry of site steps (steps that plan for several hosts at once), in planning order.

Adding a site step means one package implementing :class:`wizard.site.step.SiteStep` and one
line here. Front ends never name a site step: they go through this registry and the generic
machinery in :mod:`wizard.site`.
"""

from __future__ import annotations

from typing import Any

from wizard.site.step import SiteStep
from wizard.steps.proxy.site import PROXY_SITE
from wizard.steps.shares.site import SHARES_SITE
from wizard.steps.swarm.site import SWARM_SITE

SITE_STEPS: dict[str, SiteStep[Any]] = {
    step.name: step for step in (SHARES_SITE, SWARM_SITE, PROXY_SITE)
}
"""Site step name -> step (tests add their own)."""
