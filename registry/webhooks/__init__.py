"""Webhooks: subscriptions and the domain-event plug point (services), sending (delivery), pages (views), API (api)."""
