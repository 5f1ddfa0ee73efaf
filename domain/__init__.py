"""Pure domain logic shared by workflows, activities and the API: no I/O here."""
