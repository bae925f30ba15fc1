"""Broker plumbing shared by messages in, messages out and the client: connections, names, publishing."""
