"""What the API (and the worker's recovery) do with Temporal: accept events, edit endpoints, read the log, re-run."""
