"""Telling what happened: report files, summary.md, status, verify, reconcile."""
