"""Demo data: a deterministic portfolio of overdue loans for `make run` and for trying the starter CLI."""
