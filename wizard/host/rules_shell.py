"""Shell pieces the rules scripts share (``/usr/local/sbin/hostwiz-firewall``,
``hostwiz-proxy`` and ``hostwiz-proxy-route``): keeping a jump first in a chain, taking jumps
out, and removing a step's chains.

The scripts, and the undo scripts built from their stop functions, are compared byte for byte
with what is on a host, so these pieces must keep producing exactly the texts the steps wrote
before they were shared: ``tests/unit/test_proxy_scripts.py`` and
``tests/unit/test_firewall_script.py`` keep them fixed. Each piece uses ``"$cmd"`` (iptables
or ip6tables) the way the scripts set it.
"""

from __future__ import annotations

from collections.abc import Sequence


def first_jump_function(name: str) -> str:
    """The shell function ``NAME cmd table chain target``: make the chain's first rule the
    jump to ``target`` (moved up when it is further down, so no rule in front of it can
    accept what it should see first)."""
    return f"""{name}() {{  # cmd table chain target: chain's first rule jumps to target
  first=$("$1" -w -t "$2" -S "$3" 2>/dev/null | sed -n 2p)
  [ "$first" = "-A $3 -j $4" ] && return 0
  while "$1" -w -t "$2" -D "$3" -j "$4" 2>/dev/null; do :; done
  "$1" -w -t "$2" -I "$3" 1 -j "$4"
}}
"""


def delete_jumps(jumps: Sequence[str], indent: str = "  ") -> str:
    """Shell lines that take every jump ``TABLE:CHAIN:TARGET`` of ``jumps`` out of
    ``"$cmd"``'s rules (up to eight copies of each; a missing one is no error). The list is
    written two jumps on the first line, the rest on a continuation line."""
    head = f"{indent}for spec in "
    listed = " ".join(jumps[:2])
    if jumps[2:]:
        listed += " \\\n" + " " * len(head) + " ".join(jumps[2:])
    return (
        f"{head}{listed}; do\n"
        f"{indent}  table=${{spec%%:*}} rest=${{spec#*:}}\n"
        f"{indent}  chain=${{rest%%:*}} target=${{rest#*:}}\n"
        f"{indent}  for i in 1 2 3 4 5 6 7 8; do\n"
        f'{indent}    "$cmd" -w -t "$table" -D "$chain" -j "$target" 2>/dev/null || break\n'
        f"{indent}  done\n"
        f"{indent}done\n"
    )


def delete_chains(prefix: str, tables: Sequence[str]) -> str:
    """Shell lines that flush and delete every chain named ``PREFIX...`` in ``tables`` of
    ``"$cmd"``'s rules, whichever version of the rules made them."""
    named = rf"s/^:\({prefix}[^ ]*\).*/\1/p"
    return (
        f"  for table in {' '.join(tables)}; do\n"
        f"""    chains=$("$cmd-save" -t "$table" 2>/dev/null | sed -n '{named}')\n"""
        '    for chain in $chains; do "$cmd" -w -t "$table" -F "$chain"; done\n'
        '    for chain in $chains; do "$cmd" -w -t "$table" -X "$chain"; done\n'
        "  done\n"
    )


def stop_family_function(
    name: str, jumps: Sequence[str], prefix: str, tables: Sequence[str], extra: str = ""
) -> str:
    """The shell function ``NAME cmd``: take a step's ``jumps`` (``TABLE:CHAIN:TARGET``) and
    its chains (``PREFIX...`` in ``tables``) out of ``cmd``'s rules (iptables or ip6tables;
    nothing when it is not installed), then run the lines ``extra``. Never fails."""
    return (
        f"{name}() {{\n"
        "  cmd=$1\n"
        '  command -v "$cmd" >/dev/null 2>&1 || return 0\n'
        + delete_jumps(jumps)
        + delete_chains(prefix, tables)
        + extra
        + "  return 0\n}\n"
    )
