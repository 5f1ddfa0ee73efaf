"""Everything with side effects: HTTP to endpoints, reads of the endpoint registry."""
