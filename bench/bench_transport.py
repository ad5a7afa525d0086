"""Benchmark: latency of ``SshTransport.run`` with one exec channel per script (before) and
with the connection's persistent shell (after), on a practice host made for this run.

Prints, measured in this one run (nothing is asserted):

* per-run latency of a trivial script (``true``), median and mean, for a root login and for a
  sudo-with-password login, in both modes, and the ratio;
* the same for a script that writes 16 KiB from stdin to a file and reads it back;
* an apply-like sequence (10 scripts, each writing a file from stdin) against one connection
  doing the same work in one script on one channel (the floor; the goal for an apply is
  <= 1.3x of it), each on a fresh connection;
* the cost of the first run on a connection (it starts the persistent shell).

Run as root: ``.venv/bin/python bench/bench_transport.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab import LabHost, lab_down, lab_paths, lab_up  # noqa: E402
from wizard.secrets import Secret  # noqa: E402
from wizard.transport.ssh import SshTransport  # noqa: E402

PAYLOAD = bytes(range(256)) * 64  # 16 KiB, every byte value
STEPS = 10


def timed(action: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def connect(host: LabHost, config: Path, admin: bool, persistent: bool) -> SshTransport:
    target = f"admin@{host.name}" if admin else host.name
    password = Secret(host.admin_password) if admin else None
    return SshTransport.connect(
        target, ssh_config=config, sudo_password=password, persistent=persistent
    )


def check(ok: bool, what: str) -> None:
    if not ok:
        raise SystemExit(f"benchmark script failed: {what}")


def trivial_run(transport: SshTransport) -> Callable[[], None]:
    def action() -> None:
        check(transport.run("true").ok, "true")

    return action


def stdin_run(transport: SshTransport) -> Callable[[], None]:
    def action() -> None:
        script = "cat > /tmp/pt-bench-io && cat /tmp/pt-bench-io"
        check(transport.run(script, stdin=PAYLOAD).stdout == PAYLOAD, "stdin round trip")

    return action


def apply_like(transport: SshTransport, tag: str) -> None:
    """Ten scripts the way an apply sends them: a file's content on stdin, written in place."""
    for step in range(STEPS):
        path = f"/tmp/pt-bench-{tag}-{step}"
        result = transport.run(f"cat > {path}.new && mv {path}.new {path} && wc -c < {path}",
                               stdin=PAYLOAD)  # fmt: skip
        check(result.ok and result.out.strip() == str(len(PAYLOAD)), result.err)


def floor(transport: SshTransport, tag: str) -> None:
    """The same writes in one script on one channel: all contents on its stdin, split by dd."""
    script = (
        "set -e\n"
        f"for i in $(seq 0 {STEPS - 1}); do\n"
        f"  dd of=/tmp/pt-bench-{tag}-$i.new bs={len(PAYLOAD)} count=1 iflag=fullblock "
        "status=none\n"
        f"  mv /tmp/pt-bench-{tag}-$i.new /tmp/pt-bench-{tag}-$i\n"
        "done\n"
        f"wc -c < /tmp/pt-bench-{tag}-{STEPS - 1}"
    )
    result = transport.run(script, stdin=PAYLOAD * STEPS)
    check(result.ok and result.out.strip() == str(len(PAYLOAD)), f"floor script: {result.err}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="samples per measurement")
    args = parser.parse_args()
    runs = max(5, min(args.runs, 1000))

    host = lab_up(1, "pt", docker=False)[0]
    config = Path(lab_paths().ssh_config)
    try:
        print(f"practice host {host.name} ({host.address}), {runs} samples each\n")
        for admin in (False, True):
            who = "admin + sudo password" if admin else "root login"
            per_mode: dict[bool, tuple[list[float], list[float]]] = {}
            for persistent in (False, True):
                with connect(host, config, admin, persistent) as transport:
                    first = timed(trivial_run(transport), 1)[0]
                    trivial = timed(trivial_run(transport), runs)
                    stdin = timed(stdin_run(transport), runs)
                    transport.run("rm -f /tmp/pt-bench-io")
                    per_mode[persistent] = (trivial, stdin)
                    label = "persistent shell " if persistent else "channel per run  "
                    print(f"{who:22} {label} first run {ms(first)}")
            print()
            for index, name in enumerate(("true", "16 KiB stdin -> file -> stdout")):
                before = per_mode[False][index]
                after = per_mode[True][index]
                print(f"  {name}")
                print(
                    f"    before (channel per run): median {ms(statistics.median(before))}"
                    f"  mean {ms(statistics.mean(before))}"
                )
                print(
                    f"    after (persistent shell): median {ms(statistics.median(after))}"
                    f"  mean {ms(statistics.mean(after))}"
                )
                ratio = statistics.median(before) / statistics.median(after)
                print(f"    ratio before / after:     {ratio:8.1f}x")
            print()

        # An apply-like sequence against the one-script floor (one exec channel), root login,
        # a fresh connection each time (connection set-up included, as in an apply).
        print(f"apply-like: {STEPS} scripts with 16 KiB stdin each, vs one script (the floor)")
        results: dict[str, list[float]] = {"before": [], "after": [], "floor": []}
        rounds = max(3, runs // 8)
        for round_ in range(rounds):
            for name, persistent in (("before", False), ("after", True), ("floor", False)):
                started = time.perf_counter()
                with connect(host, config, False, persistent) as transport:
                    if name == "floor":
                        floor(transport, f"{name}{round_}")
                    else:
                        apply_like(transport, f"{name}{round_}")
                results[name].append(time.perf_counter() - started)
        floor_time = statistics.median(results["floor"])
        for name in ("before", "after", "floor"):
            value = statistics.median(results[name])
            print(f"    {name:6} median {ms(value)}   / floor {value / floor_time:6.2f}x")
        print("    (goal for an apply: <= 1.3x the floor)")
        with connect(host, config, False, True) as transport:
            transport.run("rm -f /tmp/pt-bench-*")
    finally:
        lab_down([host.name])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
