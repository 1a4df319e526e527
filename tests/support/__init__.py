"""What tests share: free ports, the CLI as a process, daemon processes, consents, servers (SeaweedFS,
a webhook receiver, a Ray cluster) and simulated pings. One place each, so a test reads as its behaviour."""
