"""Training losses of the trackers (SiamCAR's in :mod:`trackers.losses.car`)."""
