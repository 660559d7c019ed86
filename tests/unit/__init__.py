"""Unit room: no servers; in-process code and quick promtool/amtool/jsonnet runs (`make check`)."""
