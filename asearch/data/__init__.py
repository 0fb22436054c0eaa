"""Data: the Sequence record, dataset readers in native layouts, attribute annotations, crops."""
from asearch.data.attributes import (
    ATTRIBUTE_WORD_FIELDS, LASOT_ATTRIBUTES, TNL2K_ATTRIBUTES, load_attribute_words, read_attribute_flags,
    save_attribute_words,
)
from asearch.data.datasets import (
    COCODataset, GOT10kDataset, LaSOTDataset, LaSOTExtDataset, OTB99LangDataset, SequenceDataset,
    SyntheticBenchmarkDataset, TNL2KDataset, TrackingNetDataset,
)
from asearch.data.registry import DATASETS, build_dataset, dataset_names
from asearch.data.sampler import PairDataset, SamplerConfig, collate_pairs
from asearch.data.sequence import Sequence, read_image
from asearch.data.synthetic import SyntheticConfig, generate_benchmark

__all__ = [
    "Sequence", "read_image",
    "ATTRIBUTE_WORD_FIELDS", "LASOT_ATTRIBUTES", "TNL2K_ATTRIBUTES", "load_attribute_words", "save_attribute_words",
    "read_attribute_flags",
    "SequenceDataset", "LaSOTDataset", "LaSOTExtDataset", "SyntheticBenchmarkDataset", "TNL2KDataset",
    "OTB99LangDataset", "GOT10kDataset", "TrackingNetDataset", "COCODataset",
    "DATASETS", "build_dataset", "dataset_names",
    "SyntheticConfig", "generate_benchmark", "PairDataset", "SamplerConfig", "collate_pairs",
]
