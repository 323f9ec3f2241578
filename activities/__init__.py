"""Side effects of the collections process. Workflows import only `activities.contracts` (pure models)."""
