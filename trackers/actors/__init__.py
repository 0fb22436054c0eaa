"""Training actors (``actor(batch, step) -> (loss, stats)``) of the tracker families."""
