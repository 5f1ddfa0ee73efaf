"""Process plumbing: the Temporal client and its encrypted converter, logs, the HTTP client and its network guard."""
