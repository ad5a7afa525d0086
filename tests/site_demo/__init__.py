"""A test-only site step that spans two hosts, in two stages (issue #12's "done when").

Stage 1, on the host with the role ``demo-source``: make a random token in
``/etc/hostwiz-demo/token`` (once; a token that is there already is kept).
Stage 2, on the host with the role ``demo-writer``: write ``/etc/hostwiz-demo/peer.conf``
naming the source's address, and ``/etc/hostwiz-demo/peer.token`` holding the token stage 1
produced (a secret: never shown in a preview or a log).

It is registered by a test fixture only (``SITE_STEPS["site-demo"] = DEMO``): the generic
site machinery carries everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wizard.actions import RunCommand, WriteFile
from wizard.answers import describe
from wizard.facts import Fact, file_fact, text_fact
from wizard.plan import Plan
from wizard.secrets import Secret
from wizard.site.step import SiteFacts
from wizard.transport.base import Transport, shell_quote

FOLDER = "/etc/hostwiz-demo"
TOKEN = f"{FOLDER}/token"
PEER_CONF = f"{FOLDER}/peer.conf"
PEER_TOKEN = f"{FOLDER}/peer.token"
SOURCE, WRITER = "demo-source", "demo-writer"


@dataclass(frozen=True)
class DemoAnswers:
    interface: str = field(
        default="eth0",
        metadata=describe("Interface", "The source's interface whose address the writer names.",
                          "str"),
    )  # fmt: skip


def _parse_token(code: int, out: str) -> Secret | None:
    token = out.strip()
    return Secret(token) if code == 0 and token else None


TOKEN_FACT: Fact[Secret | None] = Fact("demo:token", f"cat {TOKEN}", _parse_token)
"""What stage 1 produces on the source: the token (a secret)."""


def address_fact(interface: str) -> Fact[str]:
    return text_fact(
        f"demo:address:{interface}",
        f"ip -4 -o addr show dev {shell_quote(interface)} | awk '{{print $4}}' | cut -d/ -f1 "
        "| head -n1",
    )


class DemoStep:
    name = "site-demo"
    title = "Demo: a writer that names its source"
    explanation = "Writes on one host the address of another, and a token the other made."
    answers_type = DemoAnswers
    roles = (SOURCE, WRITER)
    stages = 2

    def facts(self, answers: DemoAnswers, role: str) -> list[Fact[Any]]:
        if role == SOURCE:
            return [address_fact(answers.interface), file_fact(TOKEN)]
        return [file_fact(PEER_CONF), file_fact(PEER_TOKEN)]

    def produces(self, answers: DemoAnswers, stage: int, role: str) -> list[Fact[Any]]:
        return [TOKEN_FACT] if stage == 1 and role == SOURCE else []

    def plan(self, answers: DemoAnswers, stage: int, site: SiteFacts) -> Mapping[str, Plan]:
        source = site.one(SOURCE)
        if stage == 1:
            if source.facts[file_fact(TOKEN)].exists:
                return {source.name: Plan(self.name)}
            make = RunCommand(
                f"mkdir -p {FOLDER} && umask 077 && head -c 16 /dev/urandom | od -An -tx1 "
                f"| tr -d ' \\n' > {TOKEN}",
                why="make a token for the writer",
                touches=(TOKEN,),
            )
            return {source.name: Plan(self.name, (make,))}
        writer = site.one(WRITER)
        address = source.facts[address_fact(answers.interface)]
        conf = f"peer = {address}\n".encode()
        token = site.produced(source.name, TOKEN_FACT)
        secret = (token.reveal() if token else "(the token stage 1 makes)") + "\n"
        actions: list[WriteFile] = []
        before = (writer.facts[file_fact(PEER_CONF)], writer.facts[file_fact(PEER_TOKEN)])
        if before[0].content != conf or not before[0].exists:
            actions.append(WriteFile(PEER_CONF, conf, why=f"name {source.name}"))
        if token is None or before[1].content != secret.encode() or before[1].mode != 0o600:
            actions.append(WriteFile(PEER_TOKEN, secret.encode(), 0o600, secret=True,
                                     why=f"the token {source.name} made"))  # fmt: skip
        return {writer.name: Plan(self.name, tuple(actions), before=before)}

    def health(
        self, transport: Transport, answers: DemoAnswers, stage: int, host: str, site: SiteFacts
    ) -> list[str]:
        path = TOKEN if stage == 1 else PEER_CONF
        if transport.run(f"test -s {path}").ok:
            return []
        return [f"{path} is missing on {host}"]


DEMO = DemoStep()
