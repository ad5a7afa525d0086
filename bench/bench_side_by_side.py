"""Benchmark: hostwiz, ansible-playbook and the floor, side by side, in one run.

Three fresh practice hosts of the same kind, one per tool. Each tool brings its host to the
same end state, the ``hardened`` preset (SSH hardening, then the engine with userns-remap):
the sshd drop-in, daemon.json with userns-remap, the dockremap user and its subuid/subgid
ranges, one sshd reload and one dockerd restart. Then each runs again on its host, where there
is nothing left to change (``--repeat`` times, in turns; the median is shown). Printed,
measured in this one run (no thresholds are asserted; the goals of issue #17 are printed next
to the numbers):

* **hostwiz**: ``hostwiz apply --yes --host H --preset hardened`` as a subprocess; no change:
  ``hostwiz plan`` and ``hostwiz apply --yes`` again;
* **the floor**: one OpenSSH ``ssh`` connection running one hand-written, idempotent script
  with the same end state (no snapshot, no safety timer, no confirmation; the least any tool
  can do); no change: the same script again;
* **ansible**: ``ansible-playbook`` (ansible-core from PyPI, installed into
  ``bench/.venv-ansible`` by this script with the Debian python3) running
  ``bench/ansible/hardened.yml``; no change: the same playbook again. Skipped, with the
  reason, when ansible-core cannot be installed.

The file contents the floor and the playbook write are taken from hostwiz's own plan for the
floor's host before anything is timed (hosts of the same kind get the same plan), and after the
runs the end states of the three hosts are compared (sshd -T, the files, the dockremap user,
dockerd's security options), so the ratios compare like with like.

Each time is the wall time of one process; "cpu" is its user+sys time (with its children),
the local work that a loaded machine stretches. The machine's load average is printed: on a
shared machine, run it a few times.

The apply on fresh hosts is done ``--rounds`` times (one fresh host per tool and round, the
tools in turns; the median is shown): one run alone swings by +-50% on a loaded machine.

``--baseline DIR`` also times the apply of the hostwiz in another checkout (``DIR``, e.g. an
export of the commit before a change: ``git archive COMMIT | tar -x -C DIR``) on fresh hosts of
its own, in the same turns, so a change's before and after are compared in one run.

Run as root: ``.venv/bin/python bench/bench_side_by_side.py [--prefix NAME] [--no-ansible]
[--rounds 3] [--repeat 3] [--baseline DIR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bytecode_cache import use_bytecode_cache  # noqa: E402  (bench/ is the script's folder)

from lab import LabHost, lab_down, lab_paths, lab_up  # noqa: E402
from presets import load_preset  # noqa: E402
from wizard.actions import WriteFile  # noqa: E402
from wizard.errors import LabError  # noqa: E402
from wizard.session import Selection, preview  # noqa: E402
from wizard.steps import STEPS  # noqa: E402
from wizard.transport.ssh import SshTransport  # noqa: E402

ANSIBLE_VENV = ROOT / "bench" / ".venv-ansible"
ANSIBLE_DIR = ROOT / "bench" / "ansible"
ANSIBLE_VERSION = "ansible-core==2.19.*"
"""2.19 is the newest series whose controller runs on Python 3.11 (Debian 12's python3)."""
SYSTEM_PYTHON = "/usr/bin/python3"
DROP_IN = "/etc/ssh/sshd_config.d/00-hostwiz.conf"
DAEMON_JSON = "/etc/docker/daemon.json"

END_STATE = """
set -e
echo "== sshd -T"; /usr/sbin/sshd -T | sort
echo "== drop-in"; cat /etc/ssh/sshd_config.d/00-hostwiz.conf
echo "== daemon.json"; cat /etc/docker/daemon.json
echo "== subuid"; grep '^dockremap:' /etc/subuid
echo "== subgid"; grep '^dockremap:' /etc/subgid
echo "== dockremap"; getent passwd dockremap | cut -d: -f1,6,7; id -nG dockremap
echo "== dockerd"; docker -H unix:///var/run/docker.sock info --format '{{.SecurityOptions}}'
"""
"""What "the same end state" means here: printed on each host and compared."""


@dataclass
class Timing:
    """Wall and CPU (user+sys, with children) seconds of one process, and its exit code."""

    wall: float
    cpu: float
    code: int


def timed(command: list[str], *, stdin: bytes | None = None, env: dict[str, str] | None = None,
          log: Path | None = None, cwd: Path | None = None) -> Timing:  # fmt: skip
    """Run ``command`` (in ``cwd``); its output goes to ``log`` (or nowhere)."""
    out = log.open("ab") if log else subprocess.DEVNULL
    try:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdin=subprocess.PIPE if stdin is not None else None,
                                stdout=out, stderr=out, env=env, cwd=cwd)  # fmt: skip
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if log and not isinstance(out, int):
            out.close()
    return Timing(wall, usage.ru_utime + usage.ru_stime, proc.returncode)


def median(timings: list[Timing]) -> Timing:
    """The run with the median wall time (its cpu and exit code with it)."""
    return sorted(timings, key=lambda timing: timing.wall)[len(timings) // 2]


# ----------------------------------------------------------------------------- targets


@dataclass
class Target:
    """What the floor and the playbook write, taken from hostwiz's plan for a fresh host."""

    drop_in: bytes
    daemon_json: bytes
    subid_line: str


def target_from_plan(host: str, config: Path) -> Target:
    """hostwiz's plan for the hardened preset on ``host`` (read-only; not timed)."""
    selections = [
        Selection(STEPS[name], answers) for name, answers in load_preset("hardened").answers.items()
    ]
    transport = SshTransport.connect(host, ssh_config=config)
    try:
        changeset, _ = preview(transport, selections)
    finally:
        transport.close()
    writes = {a.path: a.content for a in changeset.actions() if isinstance(a, WriteFile)}
    subid = [
        line
        for line in writes["/etc/subuid"].decode().splitlines()
        if line.startswith("dockremap:")
    ]
    return Target(writes[DROP_IN], writes[DAEMON_JSON], subid[0])


def floor_script(target: Target) -> str:
    """One idempotent shell script with the hardened end state: what a person would write."""

    def heredoc(text: bytes) -> str:
        body = text.decode()
        assert "\nHOSTWIZ_EOF\n" not in body
        return body + ("" if body.endswith("\n") else "\n") + "HOSTWIZ_EOF"

    line = shlex.quote(target.subid_line)
    return f"""set -e
put() {{  # put PATH < CONTENT: replace PATH when different; status 0 when it changed
    tmp="$1.floor-new"; cat > "$tmp"; chmod 0644 "$tmp"
    if cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
    mv "$tmp" "$1"
}}
mkdir -p /etc/ssh/sshd_config.d /etc/docker
if put {DROP_IN} <<'HOSTWIZ_EOF'
{heredoc(target.drop_in)}
then /usr/sbin/sshd -t && /etc/init.d/ssh reload >/dev/null; fi
restart=0
if ! getent passwd dockremap >/dev/null; then
    useradd --system --no-create-home --shell /usr/sbin/nologin --user-group dockremap
    restart=1
fi
for file in /etc/subuid /etc/subgid; do
    grep -qx {line} "$file" || {{ echo {line} >> "$file"; restart=1; }}
done
if put {DAEMON_JSON} <<'HOSTWIZ_EOF'
{heredoc(target.daemon_json)}
then restart=1; fi
if [ "$restart" = 1 ]; then
    /etc/init.d/docker restart >/dev/null
    timeout 30 sh -c 'until docker -H unix:///var/run/docker.sock version >/dev/null 2>&1
        do sleep 0.5; done'
fi
"""


# ----------------------------------------------------------------------------- ansible


def ansible_playbook() -> tuple[Path | None, str]:
    """The ansible-playbook of the bench's own venv (made on first use), or None and why not."""
    program = ANSIBLE_VENV / "bin" / "ansible-playbook"
    if program.exists():
        return program, "already installed"
    if not Path(SYSTEM_PYTHON).exists():
        return None, f"{SYSTEM_PYTHON} is missing"
    steps = [
        [SYSTEM_PYTHON, "-m", "venv", str(ANSIBLE_VENV)],
        [str(ANSIBLE_VENV / "bin" / "pip"), "install", "--quiet", ANSIBLE_VERSION],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            shutil.rmtree(ANSIBLE_VENV, ignore_errors=True)
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            return None, f"`{' '.join(step[-2:])}` failed: {last}"
    return program, f"installed {ANSIBLE_VERSION} into {ANSIBLE_VENV.relative_to(ROOT)}"


def ansible_inventory(folder: Path, name: str, address: str) -> Path:
    """An inventory for one practice host: its address, the lab key and known_hosts."""
    paths = lab_paths()
    ssh_args = (
        f"-o UserKnownHostsFile={paths.known_hosts} -o StrictHostKeyChecking=yes "
        "-o IdentitiesOnly=yes"
    )
    inventory = folder / "inventory.ini"
    inventory.write_text(
        f"{name} ansible_host={address} ansible_user=root "
        f"ansible_ssh_private_key_file={paths.key} ansible_ssh_common_args='{ssh_args}'\n"
    )
    return inventory


def ansible_env(folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
            "ANSIBLE_LOCAL_TEMP": str(folder / "tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(folder / "cp"),
            "ANSIBLE_HOME": str(folder / "home"),
        }
    )
    return env


def stop_control_masters(folder: Path) -> None:
    """End the ssh ControlPersist masters this run's ansible left (they would linger 60 s)."""
    for socket in (folder / "cp").glob("*"):
        subprocess.run(["ssh", "-S", str(socket), "-O", "exit", "unused"], capture_output=True,
                       timeout=10, check=False)  # fmt: skip


# ----------------------------------------------------------------------------- the run


def end_state(host: str, config: Path) -> str:
    done = subprocess.run(["ssh", "-F", str(config), host, "sh -s"], input=END_STATE,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    failed = f"(exit {done.returncode}: {done.stderr.strip()})" if done.returncode else ""
    return done.stdout + failed


def compare_end_states(states: dict[str, str]) -> list[str]:
    """One line per tool: whether its host ended like hostwiz's, and the first difference."""
    reference = states["hostwiz"]
    lines = []
    for tool, state in states.items():
        digest = hashlib.sha256(state.encode()).hexdigest()[:12]
        if state == reference:
            lines.append(f"  {tool:8} {digest}  same as hostwiz's")
            continue
        ours, theirs = reference.splitlines(), state.splitlines()
        pairs = enumerate(zip(ours, theirs, strict=False))
        first = next((i for i, (a, b) in pairs if a != b), min(len(ours), len(theirs)))
        got = theirs[first] if first < len(theirs) else "(end)"
        want = ours[first] if first < len(ours) else "(end)"
        lines.append(f"  {tool:8} {digest}  DIFFERS: line {first + 1}: {got!r}, hostwiz: {want!r}")
    return lines


def row(label: str, timing: Timing | None, floor: float | None, goal: str = "") -> str:
    if timing is None:
        return f"  {label:34} {'-':>7}"
    ratio = f"{timing.wall / floor:6.2f}x" if floor else ""
    flag = "" if timing.code == 0 else f"  (exit {timing.code})"
    return (f"  {label:34} {timing.wall:6.2f} s {timing.cpu:6.2f} s  {ratio:>7}"
            f"{('   ' + goal) if goal else ''}{flag}")  # fmt: skip


def up_with_retries(count: int, prefix: str, attempts: int = 3) -> list[LabHost]:
    """``count`` fresh practice hosts; a boot that fails on a busy machine is tried again."""
    for attempt in range(attempts):
        try:
            return lab_up(count, prefix=prefix)
        except LabError as error:
            if attempt == attempts - 1:
                raise
            print(f"(lab up failed, trying again: {error.message})", file=sys.stderr)
    raise AssertionError("unreachable")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default="sbs", help="practice host name prefix")
    parser.add_argument("--no-ansible", action="store_true", help="skip ansible-playbook")
    parser.add_argument(
        "--repeat", type=int, default=3, help="no-change runs per tool (the median is shown)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3,
        help="fresh hosts per tool for the apply (a host is fresh once; the median is shown)",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", type=Path, metavar="DIR",
        help="also time the apply of the hostwiz checked out in DIR (before a change)",
    )  # fmt: skip
    options = parser.parse_args()
    baseline = options.baseline.resolve() if options.baseline else None
    if baseline is not None and not (baseline / "hostwiz" / "__main__.py").exists():
        parser.error(f"{baseline} holds no hostwiz checkout (no hostwiz/__main__.py)")
    use_bytecode_cache()

    playbook_program, ansible_note = (None, "--no-ansible") if options.no_ansible else (
        ansible_playbook())  # fmt: skip
    tools = ["hostwiz", "floor"] + (["ansible"] if playbook_program else []) + (
        ["baseline"] if baseline else [])  # fmt: skip
    config = lab_paths().ssh_config
    rounds = max(1, options.rounds)
    hosts: list[LabHost] = []
    try:  # a round's hosts at a time: a dozen hosts booting at once on a busy machine fail
        for _ in range(rounds):
            hosts += up_with_retries(len(tools), options.prefix)
    except BaseException:
        lab_down([host.name for host in hosts])
        raise
    # Round r uses hosts[r * len(tools):]: one fresh host per tool and round. The first
    # round's hosts carry on for the no-change runs and the end-state comparison.
    by_round = [dict(zip(tools, hosts[r * len(tools):(r + 1) * len(tools)], strict=True))
                for r in range(rounds)]  # fmt: skip
    by_tool = by_round[0]
    hostwiz = [sys.executable, "-m", "hostwiz"]
    results: dict[str, Timing | None] = {}
    with tempfile.TemporaryDirectory(prefix="hostwiz-sbs-") as temp:
        folder = Path(temp)
        log = folder / "log"
        try:
            target = target_from_plan(by_tool["floor"].name, config)
            script = floor_script(target).encode()
            floor_cmd = ["ssh", "-F", str(config), by_tool["floor"].name, "sh -s"]
            h = by_tool["hostwiz"].name
            load = os.getloadavg()
            if playbook_program:
                files = folder / "files"
                files.mkdir()
                (files / "00-hostwiz.conf").write_bytes(target.drop_in)
                (files / "daemon.json").write_bytes(target.daemon_json)
                env = ansible_env(folder)

            def playbook_for(host: LabHost) -> list[str]:
                assert playbook_program is not None
                inventory = ansible_inventory(folder, host.name, host.address)
                return [str(playbook_program), "-i", str(inventory),
                        str(ANSIBLE_DIR / "hardened.yml"), "-e", f"files_dir={files}",
                        "-e", f"subid_line={target.subid_line}"]  # fmt: skip

            fresh: dict[str, list[Timing]] = {}
            for hosts_now in by_round:  # the tools in turns, on fresh hosts each round
                floor_now = ["ssh", "-F", str(config), hosts_now["floor"].name, "sh -s"]
                fresh.setdefault("floor", []).append(timed(floor_now, stdin=script, log=log))
                fresh.setdefault("hostwiz apply", []).append(timed(
                    [*hostwiz, "apply", "--yes", "--host", hosts_now["hostwiz"].name,
                     "--preset", "hardened", "-F", str(config)], log=log))  # fmt: skip
                if playbook_program:
                    fresh.setdefault("ansible", []).append(
                        timed(playbook_for(hosts_now["ansible"]), env=env, log=log)
                    )
                if baseline:  # python -m hostwiz in DIR imports DIR's packages first
                    old = [*hostwiz, "apply", "--yes", "--host", hosts_now["baseline"].name,
                           "--preset", "hardened", "-F", str(config)]  # fmt: skip
                    fresh.setdefault("baseline", []).append(timed(old, log=log, cwd=baseline))
            results.update({name: median(timings) for name, timings in fresh.items()})
            if playbook_program:
                playbook = playbook_for(by_tool["ansible"])

            # Nothing left to change: each tool again, in turns, --repeat times (the median
            # counts: a host whose dockerd has just restarted answers slowly at first).
            plan = [*hostwiz, "plan", "--host", h, "--preset", "hardened", "-F", str(config)]
            again = [*hostwiz, "apply", "--yes", "--host", h, "--preset", "hardened",
                     "-F", str(config)]  # fmt: skip
            runs: dict[str, list[Timing]] = {}
            for _ in range(options.repeat):
                runs.setdefault("floor, no change", []).append(
                    timed(floor_cmd, stdin=script, log=log)
                )
                runs.setdefault("hostwiz plan, no change", []).append(timed(plan, log=log))
                runs.setdefault("hostwiz apply, no change", []).append(timed(again, log=log))
                if playbook_program:
                    runs.setdefault("ansible, no change", []).append(
                        timed(playbook, env=env, log=log)
                    )
            results.update({name: median(timings) for name, timings in runs.items()})
            if playbook_program:
                stop_control_masters(folder)

            states = {tool: end_state(host.name, config) for tool, host in by_tool.items()}
        except BaseException:
            if log.exists():
                sys.stderr.write(log.read_text(errors="replace")[-4000:])
            raise
        finally:
            lab_down([host.name for host in hosts])

    floor = results["floor"]
    assert floor is not None
    idle = results["floor, no change"]
    print(f"hardened preset on fresh practice hosts (load average before: "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {os.cpu_count()} CPUs)")  # fmt: skip
    print(f"  {'':34} {'wall':>8} {'cpu':>8}  {'/floor':>7}")
    print(row("floor (one ssh, one script)", floor, floor.wall))
    print(row("hostwiz apply --yes", results["hostwiz apply"], floor.wall, "goal <= 1.2x"))
    print(row("ansible-playbook", results.get("ansible"), floor.wall))
    if baseline:
        print(row("baseline hostwiz apply --yes", results["baseline"], floor.wall))
        print(f"  (baseline: {baseline})")
    print(f"  (apply: median of {rounds} fresh hosts per tool: "
          + "; ".join(f"{name} " + ", ".join(f"{t.wall:.2f}" for t in timings)
                      for name, timings in fresh.items()) + ")")  # fmt: skip
    print(f"no change (median of {options.repeat}):")
    print(row("floor again", idle, floor.wall))
    print(row("hostwiz plan", results["hostwiz plan, no change"], floor.wall, "goal <= 0.5 s"))
    print(row("hostwiz apply --yes", results["hostwiz apply, no change"], floor.wall))
    print(row("ansible-playbook again", results.get("ansible, no change"), floor.wall))
    hw, ans = results["hostwiz apply"], results.get("ansible")
    hw_idle, ans_idle = results["hostwiz plan, no change"], results.get("ansible, no change")
    if hw and ans and hw_idle and ans_idle:
        print(
            f"ansible / hostwiz: {ans.wall / hw.wall:.2f}x (apply), "
            f"{ans_idle.wall / hw_idle.wall:.2f}x (no change: playbook again / plan)"
        )
    print(f"ansible: {ansible_note}")
    print("end states (sshd -T, files, dockremap, dockerd security options):")
    for line in compare_end_states(states):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
