"""Who may do what: the principal behind each command, the policy on it, and signed commands."""
