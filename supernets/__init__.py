"""Supernets: the VLT tracking supernet (template/search SPOS paths with ModaMixers), its subnets and checkpoints.

Stable entry points: :func:`build_supernet`, :func:`load_spos_checkpoint`, :func:`extract_subnet`
(plus :func:`save_subnet` / :func:`load_subnet` / :func:`load_subnet_file`), and the building blocks
:class:`ModaMixer`, :func:`contrastive_loss`, :func:`roi_align`.
"""
from supernets.checkpoint import CheckpointReport, load_spos_checkpoint
from supernets.contrastive import ContrastiveAlignment, contrastive_loss
from supernets.modamixer import ChoiceLayer, ModaMixer
from supernets.roi import roi_align, roi_pool_vector
from supernets.subnet import VLTSubnet, extract_subnet, load_subnet, load_subnet_file, save_subnet
from supernets.vlt import SupernetConfig, VLTSupernet, build_supernet

__all__ = [
    "SupernetConfig", "VLTSupernet", "build_supernet", "VLTSubnet", "extract_subnet", "save_subnet", "load_subnet",
    "load_subnet_file",
    "load_spos_checkpoint", "CheckpointReport", "ModaMixer", "ChoiceLayer", "ContrastiveAlignment",
    "contrastive_loss", "roi_align", "roi_pool_vector",
]
