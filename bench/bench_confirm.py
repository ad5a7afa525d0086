"""Benchmark: how fast a change is confirmed when SSH is fine, and undone when it is not.

On one practice host (without dockerd), measured in this one run (no thresholds are asserted;
the goals of issue #17 are printed next to the numbers; medians of ``--rounds``):

* **confirmation when SSH is fine**: a small change (a file and a command), from the end of
  its last action to the confirmation over a new connection (new TCP connection, key
  exchange, login, the disarm under the snapshot's lock), goal <= 1 s; and the whole
  transaction, from the snapshot to the confirmation;
* **revert after a lost connection**: a change that drops new SSH connections (an iptables
  rule in the practice host's own network namespace), so that no new connection can confirm
  it. Measured on the host's clock (the same clock as this machine's: a practice host is a
  set of namespaces) from the start of the confirmation window to the end of the host's own
  restore (the journal says ``reverted``), goal <= window + 1 s. The host's deadline is in
  whole seconds and its timer looks every 0.5 s, so the revert comes between about 1 s before
  and 0.5 s after the window's end, plus the restore itself.

Run as root: ``.venv/bin/python bench/bench_confirm.py [--rounds 3] [--window 10]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import wizard.transaction as transaction  # noqa: E402
from lab import lab_down, lab_paths, lab_up  # noqa: E402
from wizard.actions import RunCommand, WriteFile  # noqa: E402
from wizard.plan import Changeset, Plan  # noqa: E402
from wizard.transport.ssh import SshTransport  # noqa: E402

JOURNAL = "/var/lib/hostwiz/snapshots/$(cat /var/lib/hostwiz/LAST)/journal"
RULE = "INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -j DROP"

window_started: list[float] = []
_real_start_window = transaction._start_window


def _start_window(transport: Any, snapshot_id: str, seconds: int) -> float:
    """The real one, with the moment it was called (the host sets its deadline during it)."""
    window_started.append(time.time())
    return _real_start_window(transport, snapshot_id, seconds)


transaction._start_window = _start_window  # type: ignore[assignment]


def confirm_round(ssh: SshTransport, name: str, number: int, window: int) -> tuple[float, float]:
    """(last action -> confirmed, snapshot -> confirmed) for one small change, in seconds."""
    stamps: dict[str, float] = {}

    def note(event: Any) -> None:
        stamps.setdefault(event.kind, time.perf_counter())
        if event.kind == "action-done":
            stamps["action-done"] = time.perf_counter()  # the last one counts

    plan = Plan("bench", (WriteFile("/etc/hostwiz-bench-confirm", f"{number}\n".encode()),
                          RunCommand("sync", why="a command", touches=())))  # fmt: skip
    started = time.perf_counter()
    result = transaction.apply_changeset(ssh, Changeset(name, (plan,)), progress=note,
                                         confirm_timeout=window)  # fmt: skip
    assert result.confirmed, result.message
    return stamps["confirm"] - stamps["action-done"], stamps["confirm"] - started


def revert_round(ssh: SshTransport, host: Any, window: int) -> float:
    """Seconds from the start of the window to the end of the host's restore."""
    console = host.console()
    seen: dict[str, float] = {}
    deadline = 3 * window + 30

    def watch() -> None:
        # On the host: wait for this change's snapshot, then for its 'reverted' line.
        script = (
            f"i=0; while [ $i -lt {deadline * 50} ]; do i=$((i+1)); "
            f"grep -q ' reverted' {JOURNAL} 2>/dev/null && grep -q 'hostwiz-bench-cut' "
            f"/var/lib/hostwiz/snapshots/$(cat /var/lib/hostwiz/LAST)/meta.json 2>/dev/null "
            "&& break; sleep 0.02; done; date +%s.%N"
        )
        seen["at"] = float(console.run(script, timeout=deadline + 30).out.split()[-1])

    console.run("rm -f /var/lib/hostwiz/LAST")  # the watcher waits for the new snapshot
    watcher = threading.Thread(target=watch)
    watcher.start()
    plan = Plan("bench", (WriteFile("/etc/hostwiz-bench-cut", b"x\n"),
                          RunCommand(f"iptables -I {RULE}", why="drop new SSH connections",
                                     undo=f"iptables -D {RULE}")))  # fmt: skip
    before = len(window_started)
    result = transaction.apply_changeset(ssh, Changeset(host.name, (plan,)),
                                         confirm_timeout=window)  # fmt: skip
    assert not result.confirmed, "the change was confirmed although new connections drop"
    watcher.join(deadline + 60)
    assert "DROP" not in console.run("iptables -S INPUT").out, "the rule was not put back"
    assert len(window_started) == before + 1
    return seen["at"] - window_started[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=int, default=10, help="confirmation window, seconds")
    parser.add_argument("--prefix", default="bconf", help="practice host name prefix")
    options = parser.parse_args()
    config = lab_paths().ssh_config
    host = lab_up(1, prefix=options.prefix, docker=False)[0]
    try:
        ssh = SshTransport.connect(host.name, ssh_config=config, connect_timeout=3)
        confirms = [confirm_round(ssh, host.name, n, options.window) for n in range(options.rounds)]
        reverts = [revert_round(ssh, host, options.window) for _ in range(options.rounds)]
        ssh.close()
    finally:
        lab_down([host.name])
    after = statistics.median(c[0] for c in confirms)
    whole = statistics.median(c[1] for c in confirms)
    revert = statistics.median(reverts)
    print(f"confirmation when SSH is fine, last action -> confirmed: {after:5.2f} s "
          f"(goal <= 1 s; runs {', '.join(f'{c[0]:.2f}' for c in confirms)})")  # fmt: skip
    print(f"  the whole small transaction, snapshot -> confirmed:   {whole:5.2f} s")
    print(f"revert after a lost connection, window start -> restored: {revert:5.2f} s "
          f"(window {options.window} s, goal <= {options.window + 1} s; runs "
          f"{', '.join(f'{r:.2f}' for r in reverts)})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
