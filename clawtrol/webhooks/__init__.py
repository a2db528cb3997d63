"""Outbound webhooks: subscriptions, a durable outbox of deliveries written with each change, and the
background sender that signs and posts them."""
