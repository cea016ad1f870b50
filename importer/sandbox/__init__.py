"""A local server that speaks the AskElephant engagements API, faults included."""
