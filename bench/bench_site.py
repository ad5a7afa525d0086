"""Benchmark: a two-host site apply against the same apply on one host.

Each host gets the same small change (a file write and a command), as one commit-confirmed
transaction per host: snapshot, safety timer, actions, confirmation over a new connection.
The two hosts of the site run at the same time, so the goal is a ratio <= 1.2 (printed next
to the numbers, measured in this one run; the median of a few rounds each).

Run as root: ``.venv/bin/python bench/bench_site.py``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab import lab_down, lab_paths, lab_up  # noqa: E402
from wizard.actions import RunCommand, WriteFile  # noqa: E402
from wizard.facts import Fact  # noqa: E402
from wizard.plan import Plan  # noqa: E402
from wizard.site.apply import apply_site, close_all  # noqa: E402
from wizard.site.model import Site, SiteHost  # noqa: E402
from wizard.site.plan import site_session  # noqa: E402
from wizard.site.registry import SITE_STEPS  # noqa: E402
from wizard.site.step import SiteFacts  # noqa: E402
from wizard.transport.base import Transport  # noqa: E402
from wizard.transport.ssh import SshTransport  # noqa: E402

ROUNDS = 5


@dataclass(frozen=True)
class BenchAnswers:
    round: int = 0


class BenchStep:
    """A one-stage site step: the same small change on every host with the role ``node``."""

    name = "bench"
    title = "Bench"
    explanation = "A file and a command on every node."
    answers_type = BenchAnswers
    roles = ("node",)
    stages = 1

    def facts(self, answers: BenchAnswers, role: str) -> list[Fact[Any]]:
        return []

    def produces(self, answers: BenchAnswers, stage: int, role: str) -> list[Fact[Any]]:
        return []

    def plan(self, answers: BenchAnswers, stage: int, site: SiteFacts) -> Mapping[str, Plan]:
        content = f"round {answers.round}\n".encode()
        actions = (
            WriteFile("/etc/hostwiz-bench.conf", content),
            RunCommand("sync", why="a command", touches=()),
        )
        return {host.name: Plan(self.name, actions) for host in site.with_role("node")}

    def health(
        self, transport: Transport, answers: BenchAnswers, stage: int, host: str, site: SiteFacts
    ) -> list[str]:
        return []


def timed_apply(names: list[str], transports: dict[str, Transport], number: int) -> float:
    hosts = tuple(SiteHost(name, name, ("node",)) for name in names)
    site = Site("bench-" + "-".join(names), "bench", hosts, {"bench": BenchAnswers(number)})
    session = site_session(site)
    chosen = {name: transports[name] for name in names}
    started = time.perf_counter()
    result = apply_site(session, chosen, confirm_timeout=30)
    elapsed = time.perf_counter() - started
    assert len(result.applied) == len(names), result.message
    return elapsed


def main() -> int:
    SITE_STEPS["bench"] = BenchStep()
    hosts = lab_up(2, prefix="sibench", docker=False)
    config = lab_paths().ssh_config
    transports: dict[str, Transport] = {}
    try:
        for host in hosts:
            transports[host.name] = SshTransport.connect(host.name, ssh_config=config)
        names = [host.name for host in hosts]
        one, two, serial = [], [], []
        for number in range(ROUNDS):
            one.append(timed_apply(names[:1], transports, 3 * number + 1))
            two.append(timed_apply(names, transports, 3 * number + 2))
            serial.append(sum(timed_apply([name], transports, 3 * number + 3) for name in names))
        one_host, two_hosts = statistics.median(one), statistics.median(two)
        print(f"one host apply:       {one_host:.2f} s (median of {ROUNDS})")
        print(f"two-host site apply:  {two_hosts:.2f} s (median of {ROUNDS})")
        print(f"ratio:                {two_hosts / one_host:.2f} (goal <= 1.2)")
        print(f"two hosts one after the other: {statistics.median(serial):.2f} s (for comparison)")
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (the practice "
              "hosts' sshd share them with hostwiz)")  # fmt: skip
    finally:
        close_all(transports)
        lab_down([host.name for host in hosts])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
