"""Trackers: models (``nn.Module`` compositions of backbone, neck and head), losses, training actors, inference
policies (trackers proper) and the generic runner that drives a tracker over a dataset.

One family per baseline: SiamCAR / VLT_SCAR here (:mod:`trackers.models.siamcar`, :mod:`trackers.models.vlt_scar`);
models, actors and trackers are built by name through :mod:`trackers.registry`.
"""
