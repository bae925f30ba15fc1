"""The bench's Selinon pipeline: what nodes.yml names, for the bare dispatch loop (never executed)."""
