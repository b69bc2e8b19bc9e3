"""Lightning DataModule over a DSID tensor file."""

from __future__ import annotations

import warnings
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dsid.data.tensor_file import DSIDData, load_tensor_file
from dsid.data.validation import check_whole


class SplitDataset(Dataset):
    """Trials of one split as dicts: ``spikes`` (T, N) float, ``index`` int, optional ``ext``
    (T + T_fwd, E) known external inputs and ``forward_spikes`` (T_fwd, N): bins after the window,
    scored but never encoded."""

    def __init__(
        self,
        spikes: np.ndarray,
        ext: Optional[np.ndarray] = None,
        forward_spikes: Optional[np.ndarray] = None,
    ):
        self.spikes = torch.as_tensor(np.asarray(spikes, np.float32))
        self.ext = None if ext is None else torch.as_tensor(np.asarray(ext, np.float32))
        self.forward = (
            None
            if forward_spikes is None
            else torch.as_tensor(np.asarray(forward_spikes, np.float32))
        )

    def __len__(self) -> int:
        return self.spikes.shape[0]

    def __getitem__(self, i: int) -> Dict[str, torch.Tensor]:
        item = {"spikes": self.spikes[i], "index": torch.tensor(i)}
        if self.ext is not None:
            item["ext"] = self.ext[i]
        if self.forward is not None:
            item["forward_spikes"] = self.forward[i]
        return item


def data_info(data: DSIDData) -> Dict[str, Any]:
    """Plain facts about the data that models are built from (saved in checkpoints)."""
    train = data.splits["train"].spikes
    return {
        "n_neurons": data.n_neurons,
        "heldout": data.heldout.tolist(),
        "area": data.area.tolist(),
        "n_areas": data.n_areas,
        "area_names": data.area_names,
        "bin_ms": data.bin_ms,
        "n_time": data.n_time,
        "n_forward": data.n_forward,
        "ext_input_size": data.ext_input_size,
        "mean_counts": np.asarray(train, np.float64).mean((0, 1)).tolist(),
    }


# more than this many spikes per second in one bin is no single neuron's (nor a small multi-unit's)
MAX_PLAUSIBLE_RATE_HZ = 2000.0


def warn_implausible_counts(path, data: DSIDData) -> None:
    """Warn when a bin holds more spikes than any neuron fires (e.g. unbinned or scaled data)."""
    for split, sd in data.splits.items():
        top = float(np.max(sd.spikes)) if sd.spikes.size else 0.0
        rate = top / (float(data.bin_ms) / 1000.0)
        if rate > MAX_PLAUSIBLE_RATE_HZ:
            warnings.warn(
                f"{path}: field '{split}/spikes': up to {top:g} counts in one "
                f"{data.bin_ms:g} ms bin "
                f"({rate:,.0f} spikes/s); expected binned spike counts of single or multi-units "
                f"(below {MAX_PLAUSIBLE_RATE_HZ:,.0f} spikes/s)"
            )
            return


class EpochShuffle(Sampler[int]):
    """A random order of ``n`` items drawn anew every epoch from ``(seed, epoch)`` alone, so a run
    resumed at epoch k sees the same order as one that never stopped (the trainer calls
    ``set_epoch`` before each epoch)."""

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=gen).tolist())

    def __len__(self) -> int:
        return self.n


class DSIDDataModule(pl.LightningDataModule):
    """Loads (and validates) a DSID tensor file; batches are dicts of tensors."""

    def __init__(
        self,
        path: str,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        observation_check=None,
        train_forward: bool = True,
        ext_inputs: bool = True,
    ):
        """``observation_check``: the observation model's class; its ``integer_counts`` and
        ``check_support`` decide what data it accepts. ``train_forward``: batches carry the
        ``forward_spikes`` of files that have them, so models learn to predict past the window.
        ``ext_inputs=False`` leaves out the file's known external inputs (to measure what they
        add)."""
        super().__init__()
        self.path, self.seed = path, seed
        self.batch_size = check_whole("data.batch_size", batch_size, 1)
        self.num_workers = check_whole("data.num_workers", num_workers, 0)
        self.observation_check = observation_check
        self.train_forward, self.ext_inputs = train_forward, ext_inputs
        self.data: Optional[DSIDData] = None

    def setup(self, stage: Optional[str] = None) -> None:
        if self.data is not None:
            return
        counts = getattr(self.observation_check, "integer_counts", True)
        self.data = load_tensor_file(self.path, counts=counts)
        if not self.ext_inputs:
            self.data.drop_ext_inputs()
        if counts:
            warn_implausible_counts(self.path, self.data)
        check = getattr(self.observation_check, "check_support", None)
        if check is not None:
            for split, sd in self.data.splits.items():
                problem = check(sd.spikes)
                if problem:
                    raise ValueError(
                        f"{self.path}: field '{split}/spikes': the "
                        f"{self.observation_check.registry_name} observation model needs "
                        f"{self.observation_check.support}, found {problem}"
                    )

    @property
    def info(self) -> Dict[str, Any]:
        self.setup()
        return data_info(self.data)

    @property
    def sessions(self) -> List[DSIDData]:
        """The recording sessions (one here; several in ``MultiSessionDataModule``)."""
        self.setup()
        return [self.data]

    def dataset(self, split: str) -> SplitDataset:
        self.setup()
        sd = self.data.splits[split]
        ext = sd.ext_inputs
        if ext is not None and not self.train_forward:
            ext = ext[:, : sd.spikes.shape[1]]
        return SplitDataset(
            sd.spikes, ext=ext, forward_spikes=sd.forward_spikes if self.train_forward else None
        )

    def loader(self, split: str, shuffle: bool = False) -> DataLoader:
        data = self.dataset(split)
        sampler = EpochShuffle(len(data), self.seed) if shuffle else None
        # a private generator for the workers' base seed: iterating never draws from the global one,
        # so a resumed run's model sees the same random numbers as one that never stopped
        return DataLoader(
            data,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            drop_last=False,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("valid")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test" if "test" in self.data.splits else "valid")
