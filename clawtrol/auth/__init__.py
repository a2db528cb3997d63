"""Who is asking: people signed in through GitHub (or the local dev sign-in), agents with API tokens."""
