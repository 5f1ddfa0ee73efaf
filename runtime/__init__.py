"""Process plumbing shared by the worker, the API and the tests: Temporal clients, the dev server."""
