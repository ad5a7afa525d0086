"""Benchmark: the firewall step with a 100-port zone set on a practice router, against the floor.

Prints, measured in this one run (no thresholds are asserted here):

* apply time of the firewall step (hostwiz's whole way through: facts, plan, snapshot, safety
  timer, the writes, the load, the boot path, health check, confirmation over a new SSH
  connection) vs the floor: a new SSH connection writing the same two rules files and running
  ``iptables-restore --noflush`` / ``ip6tables-restore --noflush`` plus the three jumps, in one
  script;
* the load on the host: ``hostwiz-firewall start`` vs the two bare restores;
* render time: the pure plan (resolve + both rules files + diffs against the facts) and the two
  renders alone, next to the facts round trip;
* whether a second plan after the apply is empty (the file text equals what iptables-save
  prints back).

The zone set: a router (mgmt eth0, lan, wan; Docker running) offering 100 custom ports spread
over the three zones, some limited to networks of either family, forwarding lan>wan with NAT.

Run as root: ``.venv/bin/python bench/bench_firewall.py``. Uses practice hosts named ``wb-*``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab import lab_down, lab_paths, lab_up_topology, parse_topology  # noqa: E402
from snapshots.rollback import rollback_plan  # noqa: E402
from wizard.plan import Changeset  # noqa: E402
from wizard.session import Selection, apply, read_facts  # noqa: E402
from wizard.steps.firewall import (  # noqa: E402
    FIREWALL,
    boot,
    iptables,
)
from wizard.steps.firewall.answers import FirewallAnswers  # noqa: E402
from wizard.transaction import Event, apply_changeset  # noqa: E402
from wizard.transport.ssh import SshTransport  # noqa: E402

PREFIX = "wb"
TOPOLOGY = """
description = "bench: a router with Docker between lan and wan, alone"
[networks.wan]
[networks.lan]
[hosts.router]
docker = true
networks = ["wan", "lan"]
"""
APPLY_RUNS = 3
FLOOR_RUNS = 5
RENDER_RUNS = 200


def zone_set() -> FirewallAnswers:
    """100 custom ports over three zones (tcp, udp, both, ranges; some from one network)."""
    mgmt = [f"{9000 + i}/tcp" for i in range(25)] + [f"{9100 + i} from fd00::/8" for i in range(5)]
    lan = [f"{10000 + i}/tcp" for i in range(20)] + [f"{10100 + i}/udp" for i in range(15)]
    lan += [f"{10200 + 10 * i}-{10205 + 10 * i}/tcp from 10.0.0.0/8" for i in range(5)]
    wan = [f"{11000 + i}/tcp" for i in range(25)] + [f"{11100 + i}/udp" for i in range(5)]
    assert len(mgmt) + len(lan) + len(wan) == 100
    return FirewallAnswers(
        enabled=True,
        mgmt_interfaces=("eth0",),
        lan_interfaces=("lan",),
        wan_interfaces=("wan",),
        mgmt_services=("ssh", "ping", *mgmt),
        lan_services=("ssh", "ping", "dns", *lan),
        wan_services=("ping", "https", *wan),
        forward=("lan>wan",),
        containers_reachable_from=("mgmt", "lan", "8080/tcp from wan"),
    )


def median_time(action: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def on_host_ms(transport: SshTransport, script: str) -> float:
    """Milliseconds ``script`` takes on the host itself (no SSH round trip in it)."""
    timed = f"a=$(date +%s%N)\n{script}\nrc=$?\nb=$(date +%s%N)\necho $(( (b - a) / 1000 ))"
    result = transport.run(timed, timeout=120)
    if not result.ok:
        raise SystemExit(f"on the host: {result.err or result.out}")
    return int(result.out.split()[-1]) / 1000


def floor_script(v4: str, v6: str) -> str:
    """Write the two files and load them with the bare tools, with the same jumps."""
    jumps = ""
    for cmd in ("iptables", "ip6tables"):
        jumps += f"{cmd} -w -N DOCKER-USER 2>/dev/null || true\n"
        for table, hook, target in iptables.JUMPS:
            if table == "nat" and cmd == "ip6tables":
                continue
            jumps += (
                f"{cmd} -w -t {table} -C {hook} -j {target} 2>/dev/null || "
                f"{cmd} -w -t {table} -I {hook} 1 -j {target}\n"
            )
    return (
        "set -e\nmkdir -p /run/wb\n"
        f"cat > /run/wb/rules.v4 <<'EOF'\n{v4}EOF\n"
        f"cat > /run/wb/rules.v6 <<'EOF'\n{v6}EOF\n"
        "iptables-restore -w --noflush < /run/wb/rules.v4\n"
        "ip6tables-restore -w --noflush < /run/wb/rules.v6\n"
        f"{jumps}"
    )


REMOVE_ALL = boot.STOP_FUNCTIONS + "hw_stop_family iptables; hw_stop_family ip6tables\n"


def main() -> int:
    spec = parse_topology(TOPOLOGY, "bench topology", name="wb-router-alone")
    topology = lab_up_topology(spec, PREFIX)
    config = lab_paths().ssh_config
    name = topology["router"].name
    try:
        answers = zone_set()
        selections = [Selection(FIREWALL, answers)]
        transport = SshTransport.connect(name, ssh_config=config)

        # Facts (one round trip) and the pure plan on them.
        facts_time = median_time(lambda: read_facts(transport, selections), 5)
        facts = read_facts(transport, selections)
        plan = FIREWALL.plan(answers, facts)
        ruleset = FIREWALL.ruleset(answers, facts)
        v4, v6 = iptables.render(ruleset, 4), iptables.render(ruleset, 6)
        rules = sum(line.startswith("-A ") for line in (v4 + v6).splitlines())
        plan_time = median_time(lambda: FIREWALL.plan(answers, facts), RENDER_RUNS)
        render_time = median_time(
            lambda: (iptables.render(ruleset, 4), iptables.render(ruleset, 6)), RENDER_RUNS
        )

        # The floor: a new connection, the two files and the bare restores in one script.
        def floor_once() -> None:
            connection = SshTransport.connect(name, ssh_config=config)
            result = connection.run(floor_script(v4, v6), timeout=120)
            connection.close()
            if not result.ok:
                raise SystemExit(f"floor failed: {result.err}")

        floors = []
        for _ in range(FLOOR_RUNS):
            floors.append(median_time(floor_once, 1))
            transport.run(REMOVE_ALL + "rm -rf /run/wb")
        floor = statistics.median(floors)

        # hostwiz's apply, rolled back after each run (the rollback is timed too).
        applies, rollbacks, confirms = [], [], []
        load = bare = 0.0
        second_plan = "not measured"
        for run in range(APPLY_RUNS):
            stamps: dict[str, float] = {}

            def note(event: Event, stamps: dict[str, float] = stamps) -> None:
                stamps.setdefault(event.kind, time.perf_counter())

            started = time.perf_counter()
            apply(transport, selections, progress=note)
            applies.append(time.perf_counter() - started)
            confirms.append(stamps["confirm"] - stamps["health"])
            if run == 0:
                after = read_facts(transport, selections)
                again = FIREWALL.plan(answers, after)
                problems = FIREWALL.live_problems(answers, after)
                second_plan = "empty" if again.empty else f"{len(again.actions)} action(s)"
                if problems:
                    second_plan += f"; live rules differ: {'; '.join(problems[:3])}"
                load = on_host_ms(transport, f"{boot.SCRIPT} start")
                bare = on_host_ms(
                    transport,
                    f"iptables-restore -w --noflush < {boot.RULES_V4} && "
                    f"ip6tables-restore -w --noflush < {boot.RULES_V6}",
                )
            snapshot = transport.run("cat /var/lib/hostwiz/LAST").out.strip()
            started = time.perf_counter()
            apply_changeset(
                transport,
                Changeset(name, (rollback_plan(transport, snapshot),)),
                reason="rollback",
            )
            rollbacks.append(time.perf_counter() - started)
        transport.close()
        apply_time = statistics.median(applies)

        print(f"zone set: 100 custom ports, {rules} rules in rules.v4 + rules.v6, "
              f"plan of {len(plan.actions)} actions")  # fmt: skip
        confirm = statistics.median(confirms)
        print(f"apply (median of {APPLY_RUNS}):  {apply_time:6.2f} s   "
              f"(health check to confirmation over a new connection: {confirm:.2f} s)")  # fmt: skip
        print(f"floor (median of {FLOOR_RUNS}):  {floor:6.2f} s   "
              "(new connection, write both files, both restores, the jumps)")  # fmt: skip
        print(f"apply / floor:           {apply_time / floor:6.1f}x")
        print(f"rollback (median):       {statistics.median(rollbacks):6.2f} s")
        print(f"load on the host:        {load:6.1f} ms  hostwiz-firewall start")
        print(f"bare restores:           {bare:6.1f} ms  iptables-restore + ip6tables-restore")
        print(f"load / bare restores:    {load / bare:6.1f}x")
        print(f"facts round trip:        {facts_time * 1000:6.1f} ms")
        print(f"plan (pure, median):     {plan_time * 1000:6.2f} ms  "
              f"({plan_time / apply_time:.2%} of the apply)")  # fmt: skip
        print(f"render v4+v6 (median):   {render_time * 1000:6.2f} ms")
        print(f"second plan after apply: {second_plan}")
    finally:
        lab_down([PREFIX])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
