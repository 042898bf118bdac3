"""Rendering for the terminal and files: tables, CSV, JSON, summaries; a leaf nothing imports back."""
