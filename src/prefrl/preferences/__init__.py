"""Preferences: segments, query selection, labellers and the preference store."""
