"""Inference policies (trackers proper): the batched base class and one tracker per family."""
