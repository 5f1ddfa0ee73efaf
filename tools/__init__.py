"""Tools for trying the service by hand; not part of the service."""
