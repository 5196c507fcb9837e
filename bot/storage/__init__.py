"""Storage: the SQL tables, the store's queries, and the exchange writer."""
