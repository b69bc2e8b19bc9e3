"""Data: the DSID tensor file, converters into it, synthetic ground-truth systems, DataModules."""

from dsid.data.from_numpy import from_numpy
from dsid.data.tensor_file import DSIDData, SplitData, load_tensor_file, write_tensor_file

__all__ = ["DSIDData", "SplitData", "from_numpy", "load_tensor_file", "write_tensor_file"]
