"""What the command line and the core do *not* import: the border that keeps them quick.

``hostwiz plan``/``apply``/``facts`` never load the wizard's UI (Textual, questionary,
screens/); loading the steps does not load cryptography, paramiko or the docker SDK (a CA or
a connection brings them when it is opened); and ``import paramiko`` leaves invoke (which
paramiko only needs for ``Match exec``) for later. Each check runs in a fresh interpreter and
looks at ``sys.modules``; no timing is asserted (bench/bench_plan.py measures).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UI = ("textual", "questionary", "screens")

FAKE_HOST = r"""
import json, re, sys
import wizard.connect
from wizard.transport.base import CommandResult, TransportStats


ANSWERS = {"ssh_login": "user root\ngroups root\nkeys yes"}


class AlmostNothing:
    # A host where every fact's command fails, except that root has a key (so that the SSH
    # step does not refuse): enough to walk the whole plan path.
    host_label = "fake"
    stats = TransportStats()

    def run(self, script, *, stdin=b"", timeout=300.0):
        import shlex
        boundary = re.search(r"HOSTWIZ-[0-9a-f]+", script)
        # Each fact's frame header: printf '%s\n' 'BOUNDARY S NAME' (wizard.facts.batch_script).
        headers = [shlex.split(quoted)[0]
                   for quoted in re.findall(r"printf '%s\\n' (.+?); trap ", script)]
        frames = []
        for header in headers if boundary else []:
            name = header.split(" S ", 1)[1]
            body = ANSWERS.get(name)
            status = 0 if body else 1
            frames.append(f"{header}\n{body or ''}\n{boundary[0]} E {status}\n")
        return CommandResult(script, 0, "".join(frames).encode())

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


wizard.connect.open_transport = lambda args, **kw: AlmostNothing()
import hostwiz.cli
code = hostwiz.cli.main(sys.argv[1:])
loaded = sorted(sys.modules)
print(json.dumps({"code": code, "modules": loaded}))
"""


def _modules_after(code: str, *args: str) -> tuple[list[str], str]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.get("code", 0) in (0, 2), done.stderr  # plan: 2 = changes pending
    return result["modules"], done.stdout


def _under(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    return [name for name in modules if name.split(".")[0] in packages]


@pytest.mark.parametrize("command", [["plan"], ["plan", "--json"], ["facts"]])
def test_the_plan_path_loads_no_ui_and_no_docker_sdk(command: list[str]) -> None:
    # Without strong_algorithms: the fake host lists no algorithms, and the step would refuse.
    options = ["--host", "fake", "--preset", "hardened", "--set", "ssh.strong_algorithms=false"]
    modules, _ = _modules_after(FAKE_HOST, *command, *options)
    assert "wizard.steps" in modules and "wizard.session" in modules  # the path really ran
    assert "wizard.render" in modules or "facts" in command
    assert _under(modules, UI) == []
    assert _under(modules, ("docker",)) == []
    assert "cryptography.x509" not in modules  # no CA or certificate was opened
    assert "invoke.context" not in modules  # paramiko's invoke only for Match exec


def test_importing_the_cli_loads_nothing_heavy() -> None:
    code = "import sys, json, hostwiz.cli\nprint(json.dumps({'modules': sorted(sys.modules)}))\n"
    modules, _ = _modules_after(code)
    assert _under(modules, (*UI, "paramiko", "cryptography", "docker", "wizard")) == [
        name for name in modules if name in ("wizard", "wizard.errors", "wizard.secrets")
    ]


def test_the_steps_load_no_cryptography_paramiko_or_docker() -> None:
    code = "import sys, json, wizard.steps\nprint(json.dumps({'modules': sorted(sys.modules)}))\n"
    modules, _ = _modules_after(code)
    assert _under(modules, ("cryptography", "paramiko", "docker", "nacl", "bcrypt")) == []
    assert _under(modules, UI) == []


def test_a_certificate_still_loads_cryptography_when_used() -> None:
    code = (
        "import sys, json\nfrom wizard.pki import CertificateAuthority, cert_info\n"
        "ca = CertificateAuthority.create('border')\n"
        "info = cert_info(ca.cert_pem)\n"
        "assert info is not None and info.is_ca, info\n"
        "print(json.dumps({'modules': sorted(sys.modules)}))\n"
    )
    modules, _ = _modules_after(code)
    assert "cryptography.x509" in modules


def test_paramiko_match_exec_still_works_through_the_deferred_invoke() -> None:
    code = (
        "import sys, json\nimport wizard.transport.ssh, paramiko\n"
        "before = 'invoke.context' in sys.modules\n"
        "config = paramiko.SSHConfig.from_text("
        "'Match exec \"true\"\\n  User matched\\nHost *\\n  Port 22\\n')\n"
        "user = config.lookup('somewhere').get('user')\n"
        "print(json.dumps({'modules': [], 'before': before, 'user': user}))\n"
    )
    _, out = _modules_after(code)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["before"] is False
    assert result["user"] == "matched"
