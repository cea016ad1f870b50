"""Deciding: the two passes over the manifest, the duplicate index, the pure planner."""
