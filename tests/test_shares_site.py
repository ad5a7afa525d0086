"""NFS server and clients as a site on practice hosts: the ids checked across hosts before any
change, the same ids everywhere after, fstab lines on the clients, real NFSv4 (libnfs through
``tests/nfs_probe.py``, with the uid a client would send), and the site rollback."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from lab import LabHost, console
from tests.probes import nfs_practice_hosts, on_console
from wizard.errors import PlanConflict
from wizard.render import as_text
from wizard.site.apply import (
    apply_site,
    preview_site,
    rollback_site,
    site_rollback_plans,
)
from wizard.site.model import Site, load_site
from wizard.site.plan import render_site, site_session
from wizard.steps.shares.site import CLIENT, SERVER
from wizard.transport.base import Transport

pytestmark = pytest.mark.lab

EXPORT, MOUNT = "/srv/nfs", "/mnt/share"


def nfs(client: LabHost, server: LabHost, uid: int, gid: int, *op: str) -> str:
    """One NFSv4 operation from ``client`` as uid:gid ("ok", or "error: ..." from libnfs)."""
    args = " ".join(shlex.quote(part) for part in op)
    script = f"python3 /root/nfs_probe.py {server.address} {EXPORT} {uid} {gid} {args}"
    result = console(client).run(script, timeout=60)
    return (result.out + result.err).strip()


def ids(host: LabHost) -> list[str]:
    return on_console(host, "id -u alice; id -u bob; getent group share | cut -d: -f3").split()


@pytest.fixture
def hosts(make_lab_hosts: Any) -> list[LabHost]:
    """A server and two clients."""
    return nfs_practice_hosts(make_lab_hosts, 3)


@pytest.fixture
def site(tmp_path: Path, hosts: list[LabHost]) -> Site:
    server, one, two = hosts
    path = tmp_path / "nfs.toml"
    path.write_text(
        f'name = "{tmp_path.name}"\n'
        f'[hosts.server]\ntarget = "{server.name}"\nroles = ["{SERVER}"]\n'
        f'[hosts.client1]\ntarget = "{one.name}"\nroles = ["{CLIENT}"]\n'
        f'[hosts.client2]\ntarget = "{two.name}"\nroles = ["{CLIENT}"]\n'
        f'[steps.nfs]\nenabled = true\nserver = "ganesha"\npath = "{EXPORT}"\n'
        'users = ["alice", "bob"]\n'
    )
    return load_site(path)


def untouched(hosts: list[LabHost]) -> None:
    server = hosts[0]
    assert "hostwiz" not in on_console(server, "cat /etc/ganesha/ganesha.conf")
    for host in hosts:
        assert on_console(host, "getent group share; getent passwd bob; true") == ""
        assert "nfs4" not in on_console(host, "cat /etc/fstab")
        assert not console(host).run(f"test -e {MOUNT}").ok


def test_a_uid_mismatch_is_explained_before_any_change(
    site: Site,
    transports: dict[str, Transport],
    hosts: list[LabHost],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, one, _ = hosts
    on_console(server, "useradd -u 2005 alice")
    on_console(one, "useradd -u 2006 alice")
    session = site_session(site)
    with pytest.raises(PlanConflict) as refused:
        preview_site(session, transports)
    message = refused.value.message
    assert "alice" in message and "uid 2005 on server" in message
    assert "uid 2006 on client1" in message
    with pytest.raises(PlanConflict):
        apply_site(session, transports, confirm_timeout=30)
    from hostwiz.cli import main

    assert main(["apply", "--site", str(site.source), "--yes", "--confirm-timeout", "30"]) != 0
    said = capsys.readouterr()
    assert "uid 2006 on client1" in said.err + said.out and "Traceback" not in said.err
    untouched(hosts)


def test_an_id_held_by_another_name_elsewhere_is_refused(
    site: Site, transports: dict[str, Transport], hosts: list[LabHost]
) -> None:
    server, _, two = hosts
    on_console(server, "useradd -u 2005 alice")
    on_console(two, "useradd -u 2005 carol")
    with pytest.raises(PlanConflict) as refused:
        preview_site(site_session(site), transports)
    assert "client2 (carol)" in refused.value.message
    on_console(two, "userdel carol")
    on_console(server, "userdel alice")
    untouched(hosts)


def test_server_and_two_clients_share_with_the_same_ids_then_roll_back(
    site: Site, transports: dict[str, Transport], hosts: list[LabHost]
) -> None:
    server, one, two = hosts
    original_conf = on_console(server, "cat /etc/ganesha/ganesha.conf")
    fstabs = [on_console(host, "cat /etc/fstab") for host in (one, two)]
    session = site_session(site)
    plan, _ = preview_site(session, transports)
    shown = as_text(render_site(plan, session))
    assert "no NFSv4 client" in shown  # practice hosts have no kernel NFS client
    untouched(hosts)

    apply_site(session, transports, expected=plan, confirm_timeout=60)
    assert ids(server) == ids(one) == ids(two)
    alice, bob, share = (int(n) for n in ids(server))
    line = f"{server.address}:{EXPORT} {MOUNT} nfs4 _netdev,nofail,hard 0 0"
    for host in (one, two):
        assert line in on_console(host, "cat /etc/fstab").splitlines()
        assert console(host).run(f"test -d {MOUNT}").ok
        assert on_console(host, "id -nG alice").split()[-1] == "share"
    assert preview_site(session, transports)[0].empty

    # alice on client1 writes in her folder; bob on client2 cannot read it; both use shared/.
    assert nfs(one, server, alice, alice, "write", "/private/alice/diary", "mine") == "ok"
    assert "error" in nfs(two, server, bob, bob, "read", "/private/alice/diary")
    assert nfs(one, server, alice, share, "write", "/shared/a.txt", "alice's") == "ok"
    assert nfs(two, server, bob, share, "write", "/shared/b.txt", "bob's") == "ok"
    assert nfs(two, server, bob, share, "read", "/shared/a.txt") == "alice'sok"
    # The server itself is not a client: outside the exported addresses, refused.
    assert "error" in nfs(server, server, alice, share, "read", "/shared/a.txt")

    plans = site_rollback_plans(site.name, transports)
    back, stuck, _notes = rollback_site(site.name, transports, plans, confirm_timeout=60)
    assert stuck == [] and len(back) == 3
    assert on_console(server, "cat /etc/ganesha/ganesha.conf") == original_conf
    assert "error" in nfs(one, server, alice, share, "read", "/shared/a.txt")
    for host, fstab in zip((one, two), fstabs, strict=True):
        assert on_console(host, "cat /etc/fstab") == fstab
        assert not console(host).run(f"test -e {MOUNT}").ok
        assert on_console(host, "getent group share; true") == ""
