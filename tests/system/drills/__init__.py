"""The fault-drill tests: thin users of the drill machinery in devstack/drills/."""
