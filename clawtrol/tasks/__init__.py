"""Tasks (work orders): validation, the review gate, done enrichment, permissions, comments."""
