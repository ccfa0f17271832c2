"""Governance: proposals on economy parameters (and new task types), frozen voting power, votes, tallies,
the timelock and the execution through the economy's parameter store. See docs/governance.md."""
