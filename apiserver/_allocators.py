"""ClusterIPs and NodePorts: values from a range, each held by one etcd key.

A Service's ClusterIP is reserved by creating `/registry/allocations/
serviceips/<ip>` in the same transaction that stores the Service, and
released in the same transaction that deletes it, so an address is never
handed out twice and never leaks, however many creates race. A random pick
that collides is retried; after a few collisions the allocator reads which
keys are taken and picks among the free ones, and a full range is a clear
error. Requested values are honoured when free and refused by name when not.
"""

from __future__ import annotations

import ipaddress
import random

from api import StatusError, internal

from .storage import Store

IP_PREFIX = "/registry/allocations/serviceips/"
PORT_PREFIX = "/registry/allocations/servicenodeports/"


class RangeAllocator:
    def __init__(self, store: Store, key_prefix: str, size: int, what: str) -> None:
        self._store = store
        self._prefix = key_prefix
        self._size = size
        self._what = what
        self._taken: set[str] = set()
        self._misses = 0

    def value_at(self, index: int) -> str:
        raise NotImplementedError

    def contains(self, value: str) -> bool:
        raise NotImplementedError

    def key(self, value: str) -> str:
        return self._prefix + value

    async def pick(self) -> str:
        """A value that is probably free; the transaction makes sure."""
        if self._misses >= 3:
            await self._refresh()
        for _ in range(64):
            value = self.value_at(random.randrange(self._size))
            if value not in self._taken:
                return value
        await self._refresh()
        free = [i for i in range(self._size) if self.value_at(i) not in self._taken]
        if not free:
            raise self.full()
        return self.value_at(random.choice(free))

    def taken(self, key: str) -> None:
        """A pick lost a race: remember it and look harder next time."""
        self._taken.add(key[len(self._prefix):])
        self._misses += 1

    async def _refresh(self) -> None:
        result = await self._store.range(self._prefix)
        self._taken = {kv.key[len(self._prefix):] for kv in result.items}
        self._misses = 0

    def full(self) -> StatusError:
        return internal(f"failed to allocate a {self._what}: range is full")


class ServiceIPAllocator(RangeAllocator):
    def __init__(self, store: Store, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr)
        # The network's first address and, for IPv4, its last are not handed out.
        self._offset = 1
        size = self.network.num_addresses - (2 if self.network.version == 4 else 1)
        super().__init__(store, IP_PREFIX, max(0, size), "serviceIP")

    def value_at(self, index: int) -> str:
        return str(self.network.network_address + self._offset + index)

    def contains(self, value: str) -> bool:
        try:
            ip = ipaddress.ip_address(value)
        except ValueError:
            return False
        if ip not in self.network or ip == self.network.network_address:
            return False
        return not (self.network.version == 4 and ip == self.network.broadcast_address)


class NodePortAllocator(RangeAllocator):
    def __init__(self, store: Store, low: int = 30000, high: int = 32767) -> None:
        self.low, self.high = low, high
        super().__init__(store, PORT_PREFIX, high - low + 1, "nodePort")

    def value_at(self, index: int) -> str:
        return str(self.low + index)

    def contains(self, value: str) -> bool:
        return value.isdigit() and self.low <= int(value) <= self.high


def parse_port_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    if not sep or not low.isdigit() or not high.isdigit() or int(low) > int(high):
        raise ValueError(f"invalid port range {text!r}: want LOW-HIGH, such as 30000-32767")
    return int(low), int(high)
