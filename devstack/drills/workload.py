"""Background workload of the drill stack besides the app's own load."""

from __future__ import annotations

import contextlib
import threading

import redis

from devstack.servers import RedisServer


class LibraryCache:
    """estimate-library § Cache Warming: its library items loaded into Redis, and read by
    estimators all the time. The app's own cache misses often (a customer write bumps the
    list version): these reads give the cache the hit rate a healthy deployment has."""

    ITEMS = 150  # above the guide's 100 warmed items
    READS_PER_TICK = 10  # every 0.1 s: 100 reads a second, well above the app's lookups

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="library-cache", daemon=True)

    def start(self) -> None:
        client = redis.Redis.from_url(self.server.url)
        with client.pipeline(transaction=False) as pipe:
            for i in range(self.ITEMS):
                pipe.set(f"library:item:{i}", f"estimate library item {i}")
            pipe.execute()
        client.close()
        self._thread.start()

    def _read(self) -> None:
        client = redis.Redis.from_url(self.server.url, socket_timeout=1)
        i = 0
        while not self._stop.wait(0.1):
            # Redis down (a drill) or not: the reads go on, as the estimators' would.
            with contextlib.suppress(redis.RedisError), client.pipeline(False) as pipe:
                for _ in range(self.READS_PER_TICK):
                    pipe.get(f"library:item:{i % self.ITEMS}")
                    i += 1
                pipe.execute()
        client.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
