"""The benchmark harness behind ``make bench``; docs/performance.md shows its last results."""
