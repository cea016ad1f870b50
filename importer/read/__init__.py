"""Reading a manifest: which kind of file it is, its dialect, its rows in bounded batches."""
