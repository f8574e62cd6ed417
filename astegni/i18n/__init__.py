"""Languages: the Ethiopian calendar and message catalogs."""
