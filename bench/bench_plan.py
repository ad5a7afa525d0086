"""Benchmark: where the time of a no-change ``hostwiz plan`` goes.

On one practice host that already has the hardened preset (so the plan is empty), prints,
measured in this one run (no thresholds are asserted; the goal of issue #17 is printed):

* the wall time of ``hostwiz plan --host H --preset hardened`` in fresh processes (median and
  best of several; goal <= 0.5 s), and of ``python -c pass`` (the interpreter's own start);
* the phases of one such run, timed inside a fresh process by wrapping the functions the
  command calls: imports, the practice-host lookup, SSH connect (TCP, key exchange, login),
  the root-rights probe, starting the persistent shell, the facts script, the TLS step's
  preparation, planning and rendering;
* ``python -X importtime`` of the same command, self times summed per package (stdlib
  modules are counted under the package that pulled them in), and whether Textual,
  questionary, the docker SDK or cryptography's x509 were imported at all.

Run as root: ``.venv/bin/python bench/bench_plan.py [--host H] [--runs N]``. Without
``--host`` it makes a practice host (``--prefix``), applies the preset, and removes the host.

Findings (December 2026, a shared 2-CPU machine at load average ~8, so every figure swings):

* Imports were about a third of the local time. ``import paramiko`` pulled in invoke (for
  ``Match exec`` only) and with it unittest.mock, asyncio, ssl and a YAML parser; the steps
  pulled in cryptography's x509 (wizard.pki, wizard.tls_client) and paramiko
  (ssh_crypto). All of that is now loaded on first use: 461 -> 353 modules, the imports of the
  plan phases 342 -> 203 ms, CPU time of the whole command ~0.26 -> ~0.23 s (medians,
  interleaved runs). Textual, questionary and the docker SDK were not loaded before either.
  What is left: paramiko itself (~50 ms, of which importlib.metadata for its version ~10),
  wizard.transport.ssh, the four steps with the firewall model (~60-80 ms of our own module
  bodies) and, without ``-F``, lab for the practice-host lookup (~30 ms).
* The rest is waiting for the host: TCP + key exchange + login (~80-110 ms), the root-rights
  probe on its own channel (~210 ms), starting the persistent shell on a second channel
  (~180 ms; sshd forks a session with PAM for each channel), and the facts script
  (~160-330 ms: 47 facts forked side by side, about as long as the slowest). Planning and
  rendering take ~1 ms. The probe now runs as the first script of the persistent shell,
  which a root login keeps: one channel instead of two (also for the confirmation's new
  connection). Next: fewer processes in the facts script (one stat/base64 for all files).
* Interpreter shutdown after the command takes another ~30-60 ms (module teardown and the
  final garbage collection).
* Later (December 2026, #17): the facts script forks once per fact instead of four times
  and frames the outputs without base64 (59 facts: 230-310 -> 170-240 ms on the host; the
  facts are also most of the practice host's CPU time per plan, ~0.3 of ~0.6 CPU-s); plan and
  apply import the planning code in a thread while the connection opens (the gap between the
  shell start and the facts went from ~100 to ~10 ms); one-host commands no longer import the
  site code; the program freezes its objects for the exit (teardown ~50 -> ~15 ms). In an
  A/B run on fresh hosts (same load): no-change plan 0.77 -> 0.61 s, apply 1.70 -> 1.54 s.
  What is left of a plan (~0.6 s): interpreter and imports ~0.15 s, TCP + key exchange +
  login ~0.1 s, the session channel (sshd's fork, PAM with systemd-logind, the login shell)
  ~0.2 s, the facts ~0.2-0.25 s (some 40% of their CPU goes to the steps that are off in the
  preset: firewall, shares, proxy, swarm, TLS), exit ~0.015 s. The floor's own no-change run
  (one ``ssh`` running the script) takes ~0.35 s, so 0.5 s leaves ~0.15 s for imports, facts
  and planning together.
* ``hostwiz apply`` of the preset on a fresh host (traced per round trip, 3.55 s in all):
  imports 0.14 s, connect 0.38 s, facts 0.46 s, recording the snapshot 0.15 s, arming the
  timer and six actions ~0.25 s, the dockerd restart 1.61 s (the floor pays it too), health
  checks ~0.3 s while the confirmation's new connection (0.32 s) overlaps them, then ~0.15 s
  to check and settle the journal. Twelve ``run`` round trips in all on the main connection.
* Later (December 2026, #17, plan): a plan reads only what the plans need
  (``facts_needed(planning=True)``, ``PlansWithFewerFacts``): off steps read nothing, or (the
  firewall) only what their guard checks; the checker shares the docker step's ``docker
  info`` (no second one, no ``docker network inspect`` off a swarm) and its dockerd and
  daemon.json reads. 43 commands -> 17, the host's CPU for them ~0.3 -> ~0.13 s; the login
  (sshd, PAM with logind and the user manager, the shell) costs it ~0.17 s as for the floor.
  Interleaved A/B at load ~11: 0.63 -> 0.53 s (with the bytecode cache, which this bench now
  uses as an installed copy would; 0.66 -> 0.55 s without it).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bytecode_cache import use_bytecode_cache  # noqa: E402  (bench/ is the script's folder)

PHASES = r"""
import json, sys, time
started = time.perf_counter()
stamps = []

def mark(name, since):
    stamps.append((name, since - started, time.perf_counter() - since))

t = time.perf_counter()
import hostwiz.cli
mark("import hostwiz.cli (argparse, errors)", t)
t = time.perf_counter()
import wizard.connect
mark("import wizard.connect (paramiko)", t)

def wrap(owner, attr, name):
    real = getattr(owner, attr)
    def timed(*args, **kwargs):
        t = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            mark(name, t)
    setattr(owner, attr, timed)

# The planning code (steps, session, presets) is imported by the command itself, while the
# connection opens (hostwiz.cli.PLANNING_MODULES): what that does not hide shows up as the
# gap between "connect: shell start" and "facts".
from wizard.transport import ssh
import wizard.facts
wrap(wizard.connect, "lab_ssh_config", "practice-host lookup (lab)")
wrap(ssh.Connector, "open", "connect: TCP, key exchange, login")
wrap(ssh.SshTransport, "_setup_root_rights", "connect: shell start + root-rights probe")
wrap(ssh.SshTransport, "_start_shell", "another shell start (not root, or none kept)")
wrap(wizard.facts, "gather", "facts: the one script")
wrap(hostwiz.cli, "_print_plan", "rendering")
wrap(ssh.SshTransport, "close", "close")
import io, contextlib
out = io.StringIO()
t = time.perf_counter()
with contextlib.redirect_stdout(out):
    code = hostwiz.cli.main(sys.argv[1:])
mark("cmd_plan in all", t)
mark("in all (after interpreter start)", started)
print(json.dumps({"code": code, "stamps": stamps}))
"""

IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")
WATCHED = {
    "textual": "textual",
    "questionary": "questionary",
    "screens": "screens",
    "docker": "docker SDK",
    "cryptography.x509": "cryptography.x509",
    "invoke": "invoke (paramiko's Match exec)",
    "lab": "lab",
}


def group_of(name: str, ancestors: list[str]) -> str:
    """The package a module's import time is counted under: the module's own package when it
    is not the standard library's, else the nearest importer that is not."""
    for candidate in [name, *ancestors]:
        top = candidate.split(".")[0]
        if top not in sys.stdlib_module_names and not top.startswith("_"):
            parts = candidate.split(".")
            return ".".join(parts[:2]) if top in ("wizard", "hostwiz") else top
    return "stdlib (interpreter and argparse etc.)"


def import_profile(command: list[str]) -> tuple[dict[str, int], set[str]]:
    done = subprocess.run([sys.executable, "-X", "importtime", *command], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    rows = []
    for line in done.stderr.splitlines():
        found = IMPORT_LINE.match(line)
        if found:
            rows.append((int(found[1]), len(found[3]), found[4]))
    groups: dict[str, int] = defaultdict(int)
    # importtime prints a module after everything it imported: parents come later, less deep.
    for index, (own, depth, name) in enumerate(rows):
        ancestors, level = [], depth
        for _, later_depth, later in rows[index + 1 :]:
            if later_depth < level:
                ancestors.append(later)
                level = later_depth
        groups[group_of(name, ancestors)] += own
    loaded = {name for _, _, name in rows}
    return dict(groups), loaded


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, capture_output=True, timeout=120, check=False)
    return time.perf_counter() - started


def measure(host: str, config: str, runs: int) -> None:
    args = ["plan", "--host", host, "--preset", "hardened", "-F", config]
    hostwiz = [sys.executable, "-m", "hostwiz", *args]
    wall(hostwiz)  # .pyc files written, host key known
    plans = [wall(hostwiz) for _ in range(runs)]
    bare = [wall([sys.executable, "-c", "pass"]) for _ in range(runs)]
    print(f"no-change `hostwiz plan` wall: median {statistics.median(plans):.3f} s, best "
          f"{min(plans):.3f} s ({runs} runs; goal <= 0.5 s)")  # fmt: skip
    print(f"  of which the interpreter's own start (python -c pass): median "
          f"{statistics.median(bare):.3f} s")  # fmt: skip

    done = subprocess.run([sys.executable, "-c", PHASES, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"phases of one run (exit {result['code']}; started at, took):")
    for name, began, seconds in sorted(result["stamps"], key=lambda stamp: stamp[1]):
        print(f"  {began * 1000:7.1f} ms  {seconds * 1000:7.1f} ms  {name}")

    groups, loaded = import_profile(["-m", "hostwiz", *args])
    print("imports (python -X importtime, self times per package, largest first):")
    for name, micros in sorted(groups.items(), key=lambda item: -item[1])[:12]:
        print(f"  {micros / 1000:7.1f} ms  {name}")
    print(f"  {sum(groups.values()) / 1000:7.1f} ms  in all ({len(loaded)} modules)")
    for module, label in WATCHED.items():
        print(f"  {label}: {'imported' if module in loaded else 'not imported'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", help="a host with the hardened preset applied already")
    parser.add_argument("-F", "--ssh-config", help="its ssh config (default: the lab's)")
    parser.add_argument("--prefix", default="bplan", help="practice host name prefix")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    use_bytecode_cache()

    from lab import lab_down, lab_paths, lab_up

    config = options.ssh_config or str(lab_paths().ssh_config)
    if options.host:
        measure(options.host, config, options.runs)
        return 0
    host = lab_up(1, prefix=options.prefix)[0]
    try:
        subprocess.run([sys.executable, "-m", "hostwiz", "apply", "--yes", "--host", host.name,
                        "--preset", "hardened", "-F", config], cwd=ROOT, capture_output=True,
                       timeout=300, check=True)  # fmt: skip
        measure(host.name, config, options.runs)
    finally:
        lab_down([host.name])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
