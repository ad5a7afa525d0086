"""The NFS site step without hosts: ids chosen across hosts, the client's plan as tables."""

from __future__ import annotations

import pytest

from wizard.actions import FileState, RunCommand, WriteFile
from wizard.errors import PlanConflict
from wizard.facts import Facts
from wizard.site.registry import SITE_STEPS
from wizard.site.step import HostFacts, SiteFacts
from wizard.steps.shares import SharesAnswers
from wizard.steps.shares.facts import ACCOUNTS, Folder, folder_fact, parse_accounts
from wizard.steps.shares.site import (
    CLIENT,
    CLIENT_FACT,
    FSTAB,
    FSTAB_FACT,
    SERVER,
    SHARES_SITE,
    NfsClient,
    client_plan,
    mount_plan,
    mounted_fact,
    site_answers,
)

BASE = "root:x:0:0::/root:/bin/bash\ndebian:x:1000:1000::/home/debian:/bin/bash\n"
GROUPS = "root:x:0:\ndebian:x:1000:\n"
ANSWERS = SharesAnswers(enabled=True, users=("alice", "bob"))
NO_NFS = NfsClient(mount_helper=False, kernel_nfs4=False, apt=True, address="10.0.0.7")


def host(
    name: str, role: str, passwd: str = "", group: str = "", client: NfsClient = NO_NFS
) -> HostFacts:
    values = {
        ACCOUNTS.name: parse_accounts(0, f"{BASE}{passwd}--\n{GROUPS}{group}"),
        CLIENT_FACT.name: client,
        FSTAB_FACT.name: FileState(FSTAB, True, b"proc /proc proc defaults 0 0\n"),
        folder_fact("/mnt/share").name: Folder("/mnt/share", exists=False),
        mounted_fact("/mnt/share").name: False,
    }
    return HostFacts(name, (role,), Facts(values, {}))


def site(*hosts: HostFacts) -> SiteFacts:
    return SiteFacts({h.name: h for h in hosts})


def test_the_step_is_registered() -> None:
    assert SITE_STEPS["nfs"] is SHARES_SITE


def test_names_that_exist_nowhere_get_ids_free_everywhere() -> None:
    chosen = site_answers(
        ANSWERS,
        site(
            host("server", SERVER, "x:x:2001:2001::/:/bin/sh\n"),
            host("client1", CLIENT, group="y:x:2002:\n"),
        ),
    )
    assert chosen.pinned_uids() == {"alice": 2003, "bob": 2004}
    assert chosen.gid == 3000
    assert chosen.networks == ("10.0.0.7/32",)


def test_an_existing_id_is_kept_when_it_is_free_elsewhere() -> None:
    chosen = site_answers(
        ANSWERS,
        site(
            host("server", SERVER, "alice:x:2500:2500::/:/bin/sh\n", "share:x:3100:\n"),
            host("client1", CLIENT),
        ),
    )
    assert chosen.pinned_uids()["alice"] == 2500 and chosen.gid == 3100


def test_different_uids_for_one_name_are_refused_naming_hosts_and_ids() -> None:
    with pytest.raises(PlanConflict) as refused:
        site_answers(
            ANSWERS,
            site(
                host("server", SERVER, "alice:x:2005:2005::/:/bin/sh\n"),
                host("client1", CLIENT, "alice:x:2006:2006::/:/bin/sh\n"),
            ),
        )
    assert "uid 2005 on server, uid 2006 on client1" in refused.value.message
    assert "usermod -u 2005 alice" in refused.value.hint


def test_an_id_another_name_holds_elsewhere_is_refused() -> None:
    with pytest.raises(PlanConflict, match=r"client1 \(carol\)"):
        site_answers(
            ANSWERS,
            site(
                host("server", SERVER, "alice:x:2005:2005::/:/bin/sh\n"),
                host("client1", CLIENT, "carol:x:2005:2005::/:/bin/sh\n"),
            ),
        )


def test_a_client_without_nfs_gets_accounts_mount_point_and_fstab_but_no_mount() -> None:
    chosen = site_answers(ANSWERS, site(host("server", SERVER), host("c", CLIENT)))
    plan = client_plan(chosen, host("c", CLIENT), "10.0.0.5", "nfs")
    commands = [a.script for a in plan.actions if isinstance(a, RunCommand)]
    assert "groupadd -g 3000 share" in commands
    assert "useradd -m -U -s /bin/bash -u 2001 alice" in commands
    assert "mkdir -p /mnt/share" in commands
    assert not any(c.startswith(("mount", "DEBIAN_FRONTEND")) for c in commands)
    fstab = next(a for a in plan.actions if isinstance(a, WriteFile))
    assert fstab.content.decode().endswith(
        "0 0\n10.0.0.5:/srv/nfs /mnt/share nfs4 _netdev,nofail,hard 0 0\n"
    )
    assert "mount -a" in "\n".join(plan.notes)
    assert "alice uid 2001, bob uid 2002, the group share gid 3000" in "\n".join(plan.notes)
    assert mount_plan(chosen, host("c", CLIENT), "nfs").empty


def test_a_client_with_kernel_support_installs_nfs_common_then_mounts_in_stage_two() -> None:
    able = NfsClient(mount_helper=False, kernel_nfs4=True, apt=True, address="10.0.0.7")
    chosen = site_answers(ANSWERS, site(host("server", SERVER), host("c", CLIENT)))
    plan = client_plan(chosen, host("c", CLIENT, client=able), "10.0.0.5", "nfs")
    commands = [a.script for a in plan.actions if isinstance(a, RunCommand)]
    assert any("apt-get install -y nfs-common" in c for c in commands)
    assert not any(c.startswith("mount") for c in commands)  # the server may not export yet
    second = mount_plan(chosen, host("c", CLIENT, client=able), "nfs")
    assert [a.script for a in second.actions if isinstance(a, RunCommand)] == ["mount /mnt/share"]


def test_a_later_users_pin_is_not_given_to_an_earlier_user() -> None:
    answers = SharesAnswers(enabled=True, users=("alice", "bob"), uids=("bob=2001",))
    chosen = site_answers(answers, site(host("server", SERVER), host("c", CLIENT)))
    assert chosen.pinned_uids() == {"alice": 2002, "bob": 2001}
