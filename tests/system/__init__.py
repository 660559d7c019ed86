"""System room: the whole stack: `make demo`, the fault drills, Alertmanager HA."""
