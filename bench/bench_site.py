"""Benchmark: a site of several practice hosts against one host, plan and apply.

Printed, measured in this one run (no thresholds are asserted; the goals of issue #17 are
printed next to the numbers; medians of a few rounds, taken in turns):

* **plan** (``hostwiz plan --host H1 ... --host HN --preset hardened``, a whole process:
  connecting to every host, reading its facts, planning, printing) of 10 hosts against 1
  (goal <= 1.5x);
* **apply of the full preset** on fresh hosts (``hostwiz apply --yes``, a whole process), 10
  hosts against 1, once (a host is fresh only once; goal <= 1.5x);
* **apply of a small change** again and again (``--set ssh.max_auth_tries=N``: the sshd
  drop-in, ``sshd -t`` and a reload), 10 hosts against 1 (goal <= 1.5x);
* for each of those, the CPU time of the hostwiz process and of the practice hosts (their
  cgroups: sshd, PAM and the login's user manager, the shells, the facts' commands, dockerd),
  and the least wall time that much CPU needs on this machine: on 2 CPUs shared with the
  hosts, 10 hosts cannot take less than that, however parallel hostwiz is;
* **a two-host site apply** of a tiny site step (a file and a command) over connections that
  are open already, against one host (goal <= 1.2x), and the same two hosts one after the
  other, for comparison.

Every host of a site runs its transaction (snapshot, safety timer, actions, confirmation over
a new connection) at the same time as the others, in threads (``MAX_PARALLEL`` at once). The
machine's load average and CPU count are printed: on 2 shared CPUs, the practice hosts'
sshd, shells and dockerd take their CPU time from the same cores as hostwiz.

Run as root: ``.venv/bin/python bench/bench_site.py [--hosts 10] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bytecode_cache import use_bytecode_cache  # noqa: E402  (bench/ is the script's folder)

from lab import lab_down, lab_paths, lab_up  # noqa: E402
from wizard.actions import RunCommand, WriteFile  # noqa: E402
from wizard.facts import Fact  # noqa: E402
from wizard.plan import Plan  # noqa: E402
from wizard.site.apply import apply_site, close_all  # noqa: E402
from wizard.site.model import Site, SiteHost  # noqa: E402
from wizard.site.plan import MAX_PARALLEL, site_session  # noqa: E402
from wizard.site.registry import SITE_STEPS  # noqa: E402
from wizard.site.step import SiteFacts  # noqa: E402
from wizard.transport.base import Transport  # noqa: E402
from wizard.transport.ssh import SshTransport  # noqa: E402

HOSTWIZ = [sys.executable, "-m", "hostwiz"]


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


@dataclass
class Run:
    """One process: wall seconds, its own CPU seconds (user+sys), and the CPU seconds the
    practice hosts' cgroups used meanwhile (None where the lab has no cpuacct cgroup)."""

    wall: float
    cpu: float
    hosts_cpu: float | None


def hosts_cpu(names: list[str]) -> float | None:
    """CPU seconds used so far by the practice hosts ``names`` (cgroup v1 cpuacct)."""
    total = 0.0
    for name in names:
        try:
            lines = Path(f"/run/hostwiz-lab/{name}/cgroups").read_text().splitlines()
            path = next(line.split()[1] for line in lines if line.startswith("cpuacct "))
            total += int(Path(f"/sys/fs/cgroup/cpuacct{path}/cpuacct.usage").read_text()) / 1e9
        except (OSError, StopIteration, ValueError, IndexError):
            return None
    return total


def timed_cli(command: str, names: list[str], config: Path, *extra: str) -> Run:
    """One ``hostwiz COMMAND --host ...`` process (its exit is checked)."""
    hosts = [word for name in names for word in ("--host", name)]
    args = [*HOSTWIZ, command, *hosts, "--preset", "hardened", "-F", str(config), *extra]
    before = hosts_cpu(names)
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    after = hosts_cpu(names)
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 2):  # plan: 2 = changes pending
        raise SystemExit(f"{' '.join(args)} failed ({code}):\n{err.decode()[-3000:]}")
    used = None if before is None or after is None else after - before
    return Run(elapsed, usage.ru_utime + usage.ru_stime, used)


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda run: run.wall)[len(runs) // 2]


def ratio_line(label: str, one: float, many: float, count: int, goal: str) -> str:
    return (f"  {label:34} 1 host {one:6.2f} s   {count} hosts {many:6.2f} s   "
            f"{many / one:5.2f}x   (goal {goal})")  # fmt: skip


def cpu_line(one: Run, many: Run, count: int) -> str:
    """Where the CPU went: hostwiz's own, and the practice hosts' (sshd, shells, dockerd),
    and the least wall time that much CPU needs on this machine's CPUs."""
    cpus = os.cpu_count() or 1

    def part(run: Run) -> str:
        hosts = "?" if run.hosts_cpu is None else f"{run.hosts_cpu:5.2f}"
        least = (run.cpu + (run.hosts_cpu or 0.0)) / cpus
        return f"cpu hostwiz {run.cpu:4.2f} + hosts {hosts} s (>= {least:4.2f} s wall)"

    return f"  {'':34} 1 host: {part(one)}; {count} hosts: {part(many)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=10, help="hosts in the big site")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are shown)")
    parser.add_argument("--prefix", default="sibench", help="practice host name prefix")
    options = parser.parse_args()
    use_bytecode_cache()
    count, rounds = options.hosts, options.rounds

    SITE_STEPS["bench"] = BenchStep()
    config = lab_paths().ssh_config
    load_before = os.getloadavg()
    made = lab_up(count + 1, prefix=options.prefix)
    single, many = [made[0].name], [host.name for host in made[1:]]
    transports: dict[str, Transport] = {}
    lines: list[str] = []
    try:
        # The full preset on fresh hosts: once per host.
        fresh_one = timed_cli("apply", single, config, "--yes")
        fresh_many = timed_cli("apply", many, config, "--yes")
        plans: dict[int, list[Run]] = {1: [], count: []}
        small: dict[int, list[Run]] = {1: [], count: []}
        for number in range(rounds):
            plans[1].append(timed_cli("plan", single, config))
            plans[count].append(timed_cli("plan", many, config))
            tries = f"ssh.max_auth_tries={4 + number % 2}"
            small[1].append(timed_cli("apply", single, config, "--yes", "--set", tries))
            small[count].append(timed_cli("apply", many, config, "--yes", "--set", tries))
        for label, one_run, many_run in [
            ("plan (no change)", median_run(plans[1]), median_run(plans[count])),
            ("apply, hardened on fresh hosts", fresh_one, fresh_many),
            ("apply, one sshd setting", median_run(small[1]), median_run(small[count])),
        ]:
            lines.append(ratio_line(label, one_run.wall, many_run.wall, count, "<= 1.5x"))
            lines.append(cpu_line(one_run, many_run, count))

        # Two hosts over open connections, a tiny site step.
        pair = [made[1].name, made[2].name]
        for name in pair:
            transports[name] = SshTransport.connect(name, ssh_config=config)
        one, two, serial = [], [], []
        for number in range(rounds):
            one.append(timed_apply(pair[:1], transports, 3 * number + 1))
            two.append(timed_apply(pair, transports, 3 * number + 2))
            serial.append(sum(timed_apply([name], transports, 3 * number + 3) for name in pair))
        med = statistics.median
        lines.append(ratio_line("apply, tiny site step (connected)", med(one), med(two), 2,
                                "<= 1.2x"))  # fmt: skip
        lines.append(f"  {'  the same two, one after the other':34} {med(serial):6.2f} s")
    finally:
        close_all(transports)
        lab_down([host.name for host in made])
    load = os.getloadavg()
    print(f"site of {count} practice hosts against one (medians of {rounds} rounds; fresh "
          f"apply: one run; MAX_PARALLEL {MAX_PARALLEL})")  # fmt: skip
    for line in lines:
        print(line)
    print(f"load average before {load_before[0]:.1f}, after {load[0]:.1f}, on "
          f"{os.cpu_count()} CPUs (the practice hosts' sshd, shells and dockerd share them "
          "with hostwiz)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
