"""Just enough rtnetlink to plug an environment into its network: a veth pair, an address, routes.

Used by the jailer (`jail.connect_network`) while the environment's first process still
holds its privileges. Plain netlink messages over a socket: no program is started, so plugging
an environment in costs a few system calls, not a fork and exec of `ip` per step.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import List, Tuple

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR = 2
NLA_F_NESTED = 0x8000

IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RTN_UNICAST = 254, 3, 0, 253, 1

_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBi")  # family, prefix length, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst/src len, tos, table, protocol, scope, type, flags


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _ifinfo(index: int = 0, up: bool = False) -> bytes:
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, IFF_UP if up else 0, IFF_UP if up else 0)


def _name(name: str) -> bytes:
    return name.encode() + b"\0"


class Netlink:
    """One rtnetlink socket of the calling thread's network namespace (when it was opened)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Netlink":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, kind: int, body: bytes, flags: int = 0) -> None:
        """Send one request and wait for its acknowledgement; raises OSError with the kernel's errno."""
        self.seq += 1
        header = struct.pack("=IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0)
        self.sock.sendto(header + body, (0, 0))
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, msg_type, _, seq, _ = struct.unpack_from("=IHHII", data, offset)
                if msg_type == NLMSG_ERROR and seq == self.seq:
                    code = struct.unpack_from("=i", data, offset + 16)[0]
                    if code:
                        raise OSError(-code, os.strerror(-code))
                    return
                offset += max(16, (length + 3) & ~3)

    def add_veth(self, name: str, master: int, peer: str, peer_netns_fd: int) -> None:
        """A veth pair: `name` here, up and a port of bridge `master`; `peer` (down: a veth cannot
        come up before its pair exists) in another namespace."""
        peer_info = _ifinfo() + _attr(IFLA_IFNAME, _name(peer)) + _attr(IFLA_NET_NS_FD,
                                                                                 struct.pack("=I", peer_netns_fd))
        info = _attr(IFLA_INFO_KIND, b"veth") + _attr(IFLA_INFO_DATA | NLA_F_NESTED,
                                                       _attr(VETH_INFO_PEER | NLA_F_NESTED, peer_info))
        body = (_ifinfo(up=True) + _attr(IFLA_IFNAME, _name(name)) + _attr(IFLA_MASTER, struct.pack("=I", master))
                + _attr(IFLA_LINKINFO | NLA_F_NESTED, info))
        self.request(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)

    def set_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, _ifinfo(index, up=True))

    def add_address(self, index: int, address: str, prefix: int) -> None:
        packed = socket.inet_aton(address)
        body = _IFADDRMSG.pack(socket.AF_INET, prefix, 0, RT_SCOPE_UNIVERSE, index)
        body += _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed)
        self.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL)

    def add_route(self, index: int, destination: Tuple[str, int] = ("0.0.0.0", 0), gateway: str = "") -> None:
        """A route to `destination` (address, prefix length) out of `index`: on the link, or via `gateway`."""
        address, prefix = destination
        scope = RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK
        body = _RTMSG.pack(socket.AF_INET, prefix, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST, 0)
        attrs: List[bytes] = [_attr(RTA_OIF, struct.pack("=i", index))]
        if prefix:
            attrs.append(_attr(RTA_DST, socket.inet_aton(address)))
        if gateway:
            attrs.append(_attr(RTA_GATEWAY, socket.inet_aton(gateway)))
        self.request(RTM_NEWROUTE, body + b"".join(attrs), NLM_F_CREATE | NLM_F_EXCL)
