"""The activity feed: events agents and scripts post, persisted and broadcast live."""
