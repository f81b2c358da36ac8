"""Random identifiers for the request path, without a system call each.

`uuid.uuid4()` and `os.urandom` read the kernel's random source (a `getrandom` call) every
time; an invocation made two. Request ids and trace ids need to be unique, not secret, so
they come from one Mersenne Twister seeded from the kernel once per process (and again in a
forked child, so that parent and child never share a sequence). Secrets (keys, tokens) keep
using `secrets`.
"""

from __future__ import annotations

import os
import random

_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)
_bits = _random.getrandbits

# Version 4 and the RFC 4122 variant, as uuid.uuid4() sets them.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def request_id() -> str:
    """A uuid4-shaped id (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`), as Lambda's request ids."""
    h = f"{(_bits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def random_hex(digits: int) -> str:
    """`digits` random lower-case hex digits."""
    return f"{_bits(digits * 4):0{digits}x}"
