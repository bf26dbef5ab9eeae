"""Compare two snapshots: matching by id, re-creation pairing, field changes, severities. Pure."""
