"""Abuse limits: client address behind trusted proxies, token buckets, beacon-id dedupe.

Every structure here is bounded by a config number, whatever clients send.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable

from saasmon.webvitals.beacon import RATE_LIMITED_CLIENT, RATE_LIMITED_GLOBAL
from saasmon.webvitals.config import RateLimit

Clock = Callable[[], float]
MAX_FORWARDED_HOPS = 20  # a longer X-Forwarded-For is not walked further
PEER_CACHE_SIZE = 1024


Address = tuple[int, bytes]  # (socket family, packed address)


def parse_ip(text: str) -> Address | None:
    """inet_pton, not the ipaddress module: a C call instead of ~6 us of Python per hop."""
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    try:
        return family, socket.inet_pton(family, text)
    except (OSError, ValueError):  # ValueError: an embedded NUL character
        return None


def v6_key(text: str) -> str:
    """IPv6 clients are keyed by their /64: one host commonly holds a whole /64 and
    could otherwise rotate through it for fresh buckets."""
    parsed = parse_ip(text)
    if parsed is None:
        return text
    return socket.inet_ntop(socket.AF_INET6, parsed[1][:8] + bytes(8)) + "/64"


class ClientResolver:
    """The client's address: the TCP peer, or X-Forwarded-For when the peer is trusted.

    The header is walked from the right (the hop our proxy appended) leftwards past
    trusted proxies; the first untrusted address is the client. Anything further left
    was written by the client and could be forged. The address is used as written: the
    transport's peer and a hop appended by a trusted proxy are canonical already.
    """

    def __init__(self, trusted_proxies: list[str]) -> None:
        self.networks: list[tuple[int, int, int]] = []  # family, base, mask as integers
        for proxy in trusted_proxies:
            net = ipaddress.ip_network(proxy, strict=False)
            family = socket.AF_INET if net.version == 4 else socket.AF_INET6
            self.networks.append((family, int(net.network_address), int(net.netmask)))
        self._peers: dict[str, bool] = {}  # TCP peers seen: few, they are the proxies

    def trusted(self, address: Address) -> bool:
        family, packed = address
        value = int.from_bytes(packed, "big")
        for net_family, base, mask in self.networks:  # noqa: SIM110 - no generator per hop
            if family == net_family and value & mask == base:
                return True
        return False

    def _peer_trusted(self, peer: str) -> bool:
        known = self._peers.get(peer)
        if known is None:
            parsed = parse_ip(peer)
            known = parsed is not None and self.trusted(parsed)
            if len(self._peers) >= PEER_CACHE_SIZE:
                self._peers.clear()
            self._peers[peer] = known
        return known

    def client(self, peer: str | None, forwarded: str | None) -> str:
        if not peer:
            return "unknown"  # a unix socket, or a transport already gone
        client = peer
        if self.networks and forwarded and self._peer_trusted(peer):
            if "," not in forwarded:
                # One hop, the common case: it is the client whether trusted or not
                # (nothing to its left to walk to), so no network check is needed.
                hop = forwarded.strip()
                if parse_ip(hop) is not None:
                    client = hop
                return client if ":" not in client else v6_key(client)
            for hop in reversed(forwarded.split(",")[-MAX_FORWARDED_HOPS:]):
                hop = hop.strip()
                parsed = parse_ip(hop)
                if parsed is None:
                    break  # garbage: keep the last address we could vouch for
                client = hop
                if not self.trusted(parsed):
                    break
        return client if ":" not in client else v6_key(client)


def take(bucket: list[float], rate: float, burst: float, now: float) -> bool:
    """Refill a [tokens, last refill time] bucket, then take one token if there is one."""
    tokens = min(burst, bucket[0] + (now - bucket[1]) * rate)
    bucket[1] = now
    if tokens >= 1.0:
        bucket[0] = tokens - 1.0
        return True
    bucket[0] = tokens
    return False


class RateLimiter:
    """A bucket per client (least recently seen forgotten past max_clients) and one global.

    Buckets are two-item lists rather than objects: with more clients than max_clients a
    new bucket is made on most requests, and a list is the cheapest thing to make.
    """

    def __init__(self, config: RateLimit, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.client_rate, self.client_burst = config.per_client_rate, float(config.per_client_burst)
        self.global_rate, self.global_burst = config.global_rate, float(config.global_burst)
        self.max_clients = config.max_clients
        self.clients: OrderedDict[str, list[float]] = OrderedDict()
        self.everyone = [self.global_burst, clock()]

    def check(self, client: str) -> str | None:
        """None when the request may pass, else the rejection reason."""
        now, clients = self.clock(), self.clients
        bucket = clients.get(client)
        if bucket is None:
            bucket = clients[client] = [self.client_burst, now]
            if len(clients) > self.max_clients:
                clients.popitem(last=False)
        else:
            clients.move_to_end(client)
        if not take(bucket, self.client_rate, self.client_burst, now):
            return RATE_LIMITED_CLIENT
        if not take(self.everyone, self.global_rate, self.global_burst, now):
            return RATE_LIMITED_GLOBAL
        return None


# Keys are cut to 60 bits: an int of two 30-bit digits takes 32 bytes, one of three (a
# full 64-bit hash) 48 with pymalloc's rounding. A false duplicate needs a 60-bit match:
# about one in 10^13 per report with 100,000 keys held.
KEY_MASK = (1 << 60) - 1


class DedupeCache:
    """Recently seen beacon keys in two generations: current (a set) and previous (a sorted
    array of 64-bit integers, searched by bisection).

    Keys are hashes of (metric, id), cut to 60 bits: a fixed size per entry however long
    the id. The current generation is retired (becoming the previous one, whose keys are
    then forgotten) after ttl/2 seconds or max_entries/2 keys, whichever comes first. So a
    key is remembered for at least ttl/2 seconds or max_entries/2 newer keys, at most ttl,
    and at most max_entries keys are held. A retired generation is frozen into an array:
    8 bytes a key instead of about 70 in a set of int objects, which halves the memory of
    a full cache (the receiver's largest structure; bench/WEBVITALS_RESULTS.md).
    """

    def __init__(self, max_entries: int, ttl: float, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.current: set[int] = set()
        self.previous = array("q")
        self.started = clock()  # when the current generation began
        self.resize(max_entries, ttl)

    def resize(self, max_entries: int, ttl: float) -> None:
        self.max_entries, self.ttl = max_entries, ttl
        self.generation_size = max(1, max_entries // 2)
        if len(self.current) + len(self.previous) > max_entries:
            self.current, self.previous = set(), array("q")

    def __len__(self) -> int:
        return len(self.current) + len(self.previous)

    def seen(self, key: int) -> bool:
        """True for a duplicate; otherwise remember the key and return False."""
        if self.max_entries == 0:
            return False
        key &= KEY_MASK
        now = self.clock()
        age = now - self.started
        if age >= self.ttl / 2:
            # Idle for a whole TTL: the current generation is too old to keep either.
            self._retire(now, keep=age < self.ttl)
        if key in self.current:
            return True
        previous = self.previous
        index = bisect_left(previous, key)
        if index < len(previous) and previous[index] == key:
            return True
        if len(self.current) >= self.generation_size:
            self._retire(now, keep=True)
        self.current.add(key)
        return False

    def _retire(self, now: float, keep: bool) -> None:
        self.previous = array("q", sorted(self.current)) if keep else array("q")
        self.current = set()
        self.started = now
