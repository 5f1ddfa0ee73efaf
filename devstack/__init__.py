"""The developer's stack: a Temporal dev server, the worker and the API as local processes (`make run`)."""
