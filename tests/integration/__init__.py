"""Integration room: real servers and our programs as processes, and long real-tool runs."""
