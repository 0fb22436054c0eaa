"""Prediction heads of the trackers (SiamCAR's CAR head in :mod:`trackers.heads.car`)."""
