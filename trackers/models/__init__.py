"""Tracker models: ``nn.Module`` compositions of backbone, neck and head, built by :mod:`trackers.registry`."""
