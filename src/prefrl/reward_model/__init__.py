"""Reward models learned from pairwise comparisons (Bradley-Terry)."""
