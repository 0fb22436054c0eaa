"""Dataset readers in the native layouts of LaSOT, LaSOT_ext, TNL2K, OTB99-Lang, GOT-10k, TrackingNet, WebUAV-3M,
VL-SOT500, COCO and the RefCOCO / RefCOCO+ / RefCOCOg referring expressions."""
from asearch.data.datasets.base import SequenceDataset, list_images, natural_key, read_boxes, read_split_file
from asearch.data.datasets.coco import COCODataset
from asearch.data.datasets.got10k import GOT10kDataset
from asearch.data.datasets.lasot import LaSOTDataset, LaSOTExtDataset, SyntheticBenchmarkDataset, lasot_test_names
from asearch.data.datasets.otb import OTB99LangDataset
from asearch.data.datasets.refcoco import RefCOCODataset
from asearch.data.datasets.tnl2k import TNL2KDataset
from asearch.data.datasets.trackingnet import TrackingNetDataset
from asearch.data.datasets.webuav3m import VLSOT500Dataset, WebUAV3MDataset

__all__ = [
    "SequenceDataset", "list_images", "natural_key", "read_boxes", "read_split_file",
    "LaSOTDataset", "LaSOTExtDataset", "SyntheticBenchmarkDataset", "lasot_test_names", "TNL2KDataset",
    "OTB99LangDataset", "GOT10kDataset", "TrackingNetDataset", "WebUAV3MDataset", "VLSOT500Dataset", "COCODataset",
    "RefCOCODataset",
]
