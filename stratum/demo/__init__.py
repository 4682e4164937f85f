"""The seeded demo: users, models, reviews, cards, an erasure request and endpoints that tell the story."""
