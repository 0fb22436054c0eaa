"""Training losses of the trackers, one module a family (SiamCAR: :mod:`trackers.losses.car`); what they share in
:mod:`trackers.losses.common`."""
