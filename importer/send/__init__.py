"""Sending: the sender and its pool, pacing, retries, stopping, the checks before sending."""
