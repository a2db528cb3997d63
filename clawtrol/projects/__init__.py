"""Projects: records in the database with an owner, task rollups, and task suggestions from PROJECT.md."""
