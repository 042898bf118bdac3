"""Durability: what the database could not take yet, and refreshed OAuth pairs."""
