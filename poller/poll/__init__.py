"""Polling: one portal's cycle, who it asks for, its chores, backfill and reconcile."""
