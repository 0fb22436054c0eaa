"""Search spaces: the VLT space declared with ``nni.mutable``, the :class:`Genome` value type and exact costs.

>>> from search_spaces import build_space
>>> space = build_space("vlt")            # 48 genes; also "vlt_symmetric" (28) and "vlt_ost" (8)
>>> genome = space.random(seed=0)
>>> space.validate(space.to_official(genome)) == genome
True
"""
from search_spaces.cost import CostTable, build_cost_table, count_module, genome_cost
from search_spaces.genome import NUM_CHOICES, STAGE_REPEATS, Genome, backbone_labels, mixer_labels
from search_spaces.vlt import SPACE_VERSION, SPACES, VARIANTS, VLTSpace, build_space, space_names

__all__ = ["CostTable", "Genome", "NUM_CHOICES", "SPACES", "SPACE_VERSION", "STAGE_REPEATS", "VARIANTS", "VLTSpace",
           "backbone_labels", "build_cost_table", "build_space", "count_module", "genome_cost", "mixer_labels",
           "space_names"]
