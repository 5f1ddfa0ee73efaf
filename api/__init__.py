"""The HTTP facade: translates HTTP to Temporal calls and back; no business rule lives here."""
