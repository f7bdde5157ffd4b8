"""How SafeGrid runs: process launchers for the local stack, tests and benchmarks."""
