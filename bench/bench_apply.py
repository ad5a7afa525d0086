"""Benchmark: applying the hardened preset on a practice host, against the floor.

Prints, measured in this one run (no thresholds are asserted here; the goals are printed next
to the numbers):

* apply time of ``hostwiz apply --yes`` vs the floor: one SSH connection doing the same writes
  and one dockerd restart (goal: ratio <= 1.2);
* the no-change ``hostwiz plan`` time (goal <= 0.5 s);
* SSH round trips for facts (goal: 1 per host) and for a whole apply, and that in-process
  apply's time by phase (reading and planning with the snapshot, the actions, the dockerd
  restart, the health checks and the confirmation after the last action);
* dockerd restarts per apply (goal <= 1);
* peak memory (max RSS) of the hostwiz process.

Run as root: ``.venv/bin/python bench/bench_apply.py``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab import lab_down, lab_paths, lab_up  # noqa: E402
from presets import load_preset  # noqa: E402
from snapshots.rollback import rollback_plan  # noqa: E402
from wizard.actions import RunCommand, WriteFile  # noqa: E402
from wizard.plan import Changeset  # noqa: E402
from wizard.session import Selection, preview, read_facts  # noqa: E402
from wizard.steps import STEPS  # noqa: E402
from wizard.transaction import apply_changeset  # noqa: E402
from wizard.transport.ssh import SshTransport  # noqa: E402

HOSTWIZ = [sys.executable, "-m", "hostwiz"]


def run_hostwiz(*args: str) -> tuple[float, int, int]:
    """Wall time, exit code and max RSS (KiB) of one hostwiz process."""
    started = time.perf_counter()
    proc = subprocess.Popen([*HOSTWIZ, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, _, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = 0
    return elapsed, os.waitstatus_to_exitcode(_), usage.ru_maxrss


def dockerd_pid(transport: SshTransport) -> str:
    return transport.run("pidof dockerd || true").out.strip()


def main() -> int:
    host = lab_up(1, prefix="bench")[0]
    config = str(lab_paths().ssh_config)
    try:
        selections = [
            Selection(STEPS[name], answers)
            for name, answers in load_preset("hardened").answers.items()
        ]
        transport = SshTransport.connect(host.name, ssh_config=Path(config))

        # Facts: one round trip.
        before = transport.stats.round_trips
        read_facts(transport, selections)
        fact_trips = transport.stats.round_trips - before

        # The floor: the same writes and one restart through one connection, in one script.
        changeset, _ = preview(transport, selections)
        writes = [a for a in changeset.actions() if isinstance(a, WriteFile)]
        commands = [a for a in changeset.actions() if isinstance(a, RunCommand)]
        script = "set -e\n" + "\n".join(a.script for a in commands[:-1])
        for write in writes:
            script += f"\nprintf '%s' '{write.content.decode()}' > {write.path}"
        script += "\n" + commands[-1].script
        started = time.perf_counter()
        floor_connection = SshTransport.connect(host.name, ssh_config=Path(config))
        assert floor_connection.run(script, timeout=180).ok
        floor_connection.close()
        floor = time.perf_counter() - started
        # Back to the defaults for the measured apply.
        transport.run(
            "rm -f /etc/docker/daemon.json /etc/ssh/sshd_config.d/00-hostwiz.conf; "
            "userdel dockremap; sed -i '/^dockremap:/d' /etc/subuid /etc/subgid; "
            "/etc/init.d/ssh reload >/dev/null; /etc/init.d/docker restart >/dev/null; sleep 2"
        )

        pid_before = dockerd_pid(transport)
        apply_time, code, apply_rss = run_hostwiz("apply", "--yes", "--host", host.name,
                                                  "-F", config)  # fmt: skip
        pid_after = dockerd_pid(transport)
        # Restarts that ran: "restart dockerd" actions of the applied snapshot that completed.
        last = "/var/lib/hostwiz/snapshots/$(cat /var/lib/hostwiz/LAST)"
        meta = json.loads(transport.run(f"cat {last}/meta.json").out)
        journal = transport.run(f"cat {last}/journal").out
        done = {line.rsplit(" ", 1)[1] for line in journal.splitlines() if " done " in line}
        restarts = sum(
            1
            for index, text in enumerate(meta["actions"])
            if "restart dockerd" in text and str(index) in done
        )

        plan_time, plan_code, plan_rss = run_hostwiz("plan", "--host", host.name, "-F", config)

        # Round trips of a whole apply, in process.
        snapshot = transport.run("cat /var/lib/hostwiz/LAST").out.strip()
        apply_changeset(transport, Changeset(host.name, (rollback_plan(transport, snapshot),)),
                        reason="rollback")  # fmt: skip
        counter = SshTransport.connect(host.name, ssh_config=Path(config))
        from wizard.session import apply

        stamps: dict[str, float] = {}
        first: dict[str, float] = {}

        def note(event: Any) -> None:
            now = time.perf_counter()
            stamps[event.kind] = now
            first.setdefault(event.kind, now)
            if event.kind == "action" and event.message.startswith("restart dockerd"):
                first.setdefault("restart", now)

        began = time.perf_counter()
        apply(counter, selections, progress=note)
        apply_trips = counter.stats.round_trips
        confirm_after = stamps["confirm"] - stamps["action-done"]
        restart = first.get("restart", stamps["action-done"])
        phases = {  # the snapshot event comes when its round trip (with the arming) ends
            "read, plan, snapshot and arm": first["snapshot"] - began,
            "actions before the restart": restart - first["action"],
            "dockerd restart": stamps["action-done"] - restart,
            "health checks and confirmation": stamps["confirm"] - stamps["action-done"],
        }
        counter.close()
        transport.close()

        print(f"apply (exit {code}):       {apply_time:6.2f} s")
        print(f"floor:                 {floor:6.2f} s")
        print(f"apply / floor:         {apply_time / floor:6.2f}x   (goal <= 1.2)")
        print(f"no-change plan (exit {plan_code}): {plan_time:6.2f} s   (goal <= 0.5 s)")
        print(f"facts round trips:     {fact_trips:6d}     (goal 1 per host)")
        print(f"apply round trips:     {apply_trips:6d}")
        print(f"confirmed after change:{confirm_after:6.2f} s   (goal <= 1 s)")
        by_phase = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items())
        print(f"in-process apply by phase: {by_phase}")
        print(
            f"dockerd restarts:      {restarts:6d}     (goal <= 1; pid {pid_before} -> {pid_after})"
        )
        print(f"peak RSS apply / plan: {apply_rss / 1024:6.1f} / {plan_rss / 1024:.1f} MiB")
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"(bench process max RSS {own:.1f} MiB)")
    finally:
        lab_down([host.name])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
