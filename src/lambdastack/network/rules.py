"""The firewall of one server's environments, as an nftables ruleset of its own tables.

Every packet an environment sends leaves through its veth into the server's bridge, and every
one meets these rules (an environment routes even its neighbours' addresses through the
gateway). What they allow:

- out to public addresses, masqueraded behind the host (Lambda's default outside a VPC);
- with `egress private`, the private ranges too;
- to the host only: DNS at the gateway (forwarded to the host's resolver), the Lambda API
  endpoint for functions, and the host ports the operator allowed (`--allow-host-port`,
  forwarded to the host's loopback, where the service sees the connection come from
  127.0.0.1, as from a local client: the operator opened that port to functions);
- nothing else: not the host's other ports or addresses, not link-local (169.254.0.0/16,
  with the instance metadata address), not other environments (of this server or another),
  not IPv6. A refused TCP connection is reset and anything else gets an ICMP error, so an
  attempt fails at once instead of timing out.

The tables are lambdastack's own (`lambdastack_<tag>`, inet and bridge families): nothing of
the host's firewall is touched, and removing them removes every rule the server added.
"""

from __future__ import annotations

from dataclasses import dataclass

# Never reached from an environment, whatever the egress mode.
ALWAYS_BLOCKED = (
    "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "198.18.0.0/15", "224.0.0.0/3",  # multicast, reserved, broadcast
)
# Reached only with `--egress private`.
PRIVATE = ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16")
# Environments' addresses: one /20 of this range per server (all of it is blocked above).
ENVIRONMENT_RANGE = "198.18.0.0/15"


@dataclass(frozen=True)
class Plan:
    tag: str  # the server's: names its bridge, veths and tables
    bridge: str
    veth_prefix: str
    subnet: str  # e.g. 198.18.16.0/20
    gateway: str
    egress: str  # public | private
    host_ports: tuple[int, ...]
    endpoint_port: int  # the Lambda API endpoint for functions, on the gateway
    resolver: str | None  # the host's DNS resolver that the gateway forwards to

    @property
    def table(self) -> str:
        return f"lambdastack_{self.tag}"


def ruleset(plan: Plan) -> str:
    """The `nft -f` text that creates (or replaces) the server's tables."""
    blocked = ALWAYS_BLOCKED + (() if plan.egress == "private" else PRIVATE)
    br, gw = plan.bridge, plan.gateway
    dnat: list[str] = []
    if plan.resolver:
        dnat += [f'iifname "{br}" ip daddr {gw} {proto} dport 53 dnat ip to {plan.resolver}:53'
                 for proto in ("udp", "tcp")]
    if plan.host_ports:
        ports = ", ".join(str(p) for p in plan.host_ports)
        dnat.append(f'iifname "{br}" ip daddr {gw} tcp dport {{ {ports} }} dnat ip to 127.0.0.1')
    return f"""
table inet {plan.table}
delete table inet {plan.table}
table inet {plan.table} {{
  set blocked {{
    type ipv4_addr
    flags interval
    elements = {{ {", ".join(blocked)} }}
  }}
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    {_lines(dnat)}
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {plan.subnet} oifname != "{br}" masquerade
  }}
  chain input_nat {{
    type nat hook input priority 100; policy accept;
    iifname "{br}" ct status dnat ip daddr 127.0.0.0/8 snat ip to 127.0.0.1
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname != "{br}" accept
    ct state established,related accept
    ip daddr {gw} tcp dport {plan.endpoint_port} accept
    ct status dnat accept
    {_refuse("")}
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    oifname "{br}" ct state established,related accept
    oifname "{br}" iifname != "{br}" drop
    iifname != "{br}" accept
    {_refuse(f'oifname "{br}" ')}
    ct status dnat accept
    meta nfproto ipv6 reject with icmpx type admin-prohibited
    {_refuse("ip daddr @blocked ")}
  }}
}}
table bridge {plan.table}
delete table bridge {plan.table}
table bridge {plan.table} {{
  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname "{plan.veth_prefix}*" oifname "{plan.veth_prefix}*" drop
  }}
}}
"""


def _refuse(match: str) -> str:
    """Refuse what `match` matches at once: a TCP reset (ECONNREFUSED), else an ICMP error."""
    return _lines([f"{match}meta l4proto tcp reject with tcp reset", f"{match}reject with icmpx type admin-prohibited"])


def _lines(rules: list[str]) -> str:
    return "\n    ".join(rules)


def teardown(tag: str) -> str:
    """The `nft -f` text that removes a server's tables (present or not)."""
    table = f"lambdastack_{tag}"
    return f"table inet {table}\ndelete table inet {table}\ntable bridge {table}\ndelete table bridge {table}\n"


# ---------------------------------------------------------------------- user-mode networking


@dataclass(frozen=True)
class EnvironmentPlan:
    """The rules an environment under user-mode networking carries in its own namespace.

    There the environment's traffic leaves through a user-mode stack (slirp4netns) whose
    sockets are the host's own: what it may reach is decided before a packet leaves the
    environment. `gateway` is the host's loopback as the environment sees it; `dns` the
    address its resolv.conf names, whose queries go to the server's DNS relay on the gateway.
    """

    gateway: str
    dns: str
    egress: str  # public | private
    host_addresses: tuple[str, ...]  # every address of the host's own: never reached
    gateway_ports: tuple[int, ...]  # TCP ports open at the gateway: the API, allowed host ports, the relay
    relay_port: int | None


def environment_ruleset(plan: EnvironmentPlan) -> str:
    """The `nft -f` text loaded into one environment's network namespace (its output hook)."""
    blocked = ALWAYS_BLOCKED + (() if plan.egress == "private" else PRIVATE) + plan.host_addresses
    accept: list[str] = []
    dnat: list[str] = []
    if plan.gateway_ports:
        accept.append(f"ip daddr {plan.gateway} tcp dport {{ {', '.join(str(p) for p in plan.gateway_ports)} }} accept")
    if plan.relay_port:
        accept.append(f"ip daddr {plan.gateway} udp dport {plan.relay_port} accept")
        dnat = [f"ip daddr {plan.dns} {proto} dport 53 dnat ip to {plan.gateway}:{plan.relay_port}"
                for proto in ("udp", "tcp")]
    return f"""
table inet lambdastack {{
  set blocked {{
    type ipv4_addr
    flags interval
    auto-merge
    elements = {{ {", ".join(blocked)} }}
  }}
  chain dns {{
    type nat hook output priority -100; policy accept;
    {_lines(dnat)}
  }}
  chain output {{
    type filter hook output priority filter; policy accept;
    oifname "lo" accept
    {_lines(accept)}
    meta nfproto ipv6 reject with icmpx type admin-prohibited
    {_refuse("ip daddr @blocked ")}
  }}
}}
"""
