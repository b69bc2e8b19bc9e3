"""Several DSID tensor files (sessions with different neurons) trained together (stitching).

Batches are drawn from one session at a time and carry a ``session`` index, so a stitched model
can pick that session's read-in and read-out maps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler

from dsid.data.datamodule import data_info
from dsid.data.tensor_file import DataFileError, DSIDData, load_tensor_file


class SessionDataset(Dataset):
    """One session's split: ``spikes`` (T, N_s) float, ``index`` and ``session`` ints."""

    def __init__(self, spikes: np.ndarray, session: int):
        self.spikes = torch.as_tensor(np.asarray(spikes, np.float32))
        self.session = session

    def __len__(self) -> int:
        return self.spikes.shape[0]

    def __getitem__(self, i: int) -> Dict[str, torch.Tensor]:
        return {
            "spikes": self.spikes[i],
            "index": torch.tensor(i),
            "session": torch.tensor(self.session),
        }


class SessionBatchSampler(Sampler[List[int]]):
    """Batches of indices into a ConcatDataset of sessions, each batch from one session only.

    With ``shuffle`` the trials within each session and the order of all batches are shuffled anew
    every epoch (seeded by ``seed`` and the epoch count), so sessions interleave.
    """

    def __init__(self, sizes: Sequence[int], batch_size: int, shuffle: bool, seed: int = 0):
        self.sizes, self.batch_size, self.shuffle, self.seed = (
            list(sizes),
            int(batch_size),
            shuffle,
            seed,
        )
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(int)
        self.epoch = 0

    def _batches(self, rng: Optional[np.random.Generator]) -> List[List[int]]:
        batches = []
        for size, offset in zip(self.sizes, self.offsets):
            order = rng.permutation(size) if rng is not None else np.arange(size)
            for start in range(0, size, self.batch_size):
                batches.append([int(offset + i) for i in order[start : start + self.batch_size]])
        return batches

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order the next iteration gives (the trainer sets it before each epoch, so
        a resumed run sees the same order as one that never stopped)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[List[int]]:
        rng = np.random.default_rng([self.seed, self.epoch]) if self.shuffle else None
        self.epoch += 1
        batches = self._batches(rng)
        if rng is not None:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return iter(batches)

    def __len__(self) -> int:
        return sum(-(-s // self.batch_size) for s in self.sizes)


def check_sessions(datas: Sequence[DSIDData]) -> None:
    """Sessions must share the bin width and the number of bins (and forward bins) per trial."""
    ref = datas[0]
    for d in datas[1:]:
        if d.bin_ms != ref.bin_ms:
            raise DataFileError(
                d.path,
                "attrs/bin_ms",
                f"{ref.bin_ms} ms like session 0 ({ref.path})",
                f"{d.bin_ms} ms",
            )
        for split, sd in d.splits.items():
            if sd.spikes.shape[1] != ref.n_time:
                raise DataFileError(
                    d.path,
                    f"{split}/spikes",
                    f"T={ref.n_time} bins per trial like session 0 ({ref.path})",
                    f"T={sd.spikes.shape[1]}",
                )
        if d.n_forward != ref.n_forward:
            raise DataFileError(
                d.path,
                "forward_spikes",
                f"{ref.n_forward} forward bins like session 0 ({ref.path})",
                f"{d.n_forward}",
            )


def check_observation_support(path, data: DSIDData, observation_check) -> None:
    """Refuse data outside the observation model's support, naming the file and the field."""
    check = getattr(observation_check, "check_support", None)
    if check is None:
        return
    for split, sd in data.splits.items():
        problem = check(sd.spikes)
        if problem:
            raise ValueError(
                f"{path}: field '{split}/spikes': the {observation_check.registry_name} "
                f"observation model needs {observation_check.support}, found {problem}"
            )


class MultiSessionDataModule(pl.LightningDataModule):
    """Loads (and validates) several DSID tensor files; batches are dicts of tensors with a
    ``session`` index, each batch from one session."""

    def __init__(
        self,
        paths: Sequence[str],
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        observation_check=None,
    ):
        super().__init__()
        if isinstance(paths, (str, Path)) or not len(paths):
            raise ValueError(
                f"data.files: expected a non-empty list of DSID tensor files, got {paths!r}"
            )
        paths = [str(p) for p in paths]
        dupes = sorted({p for p in paths if paths.count(p) > 1})
        if dupes:
            raise ValueError(f"data.files: each session must be listed once; repeated: {dupes}")
        self.paths, self.batch_size, self.num_workers, self.seed = (
            paths,
            batch_size,
            num_workers,
            seed,
        )
        self.observation_check = observation_check
        self.sessions: Optional[List[DSIDData]] = None

    @property
    def n_sessions(self) -> int:
        return len(self.paths)

    def setup(self, stage: Optional[str] = None) -> None:
        if self.sessions is not None:
            return
        counts = getattr(self.observation_check, "integer_counts", True)
        datas = []
        for path in self.paths:
            data = load_tensor_file(path, counts=counts)
            check_observation_support(path, data, self.observation_check)
            datas.append(data)
        check_sessions(datas)
        self.sessions = datas

    @property
    def info(self) -> Dict[str, Any]:
        """Plain facts about every session (saved in checkpoints)."""
        self.setup()
        ref = self.sessions[0]
        return {
            "n_sessions": len(self.sessions),
            "files": list(self.paths),
            "bin_ms": ref.bin_ms,
            "n_time": ref.n_time,
            "n_forward": ref.n_forward,
            "sessions": [data_info(d) for d in self.sessions],
        }

    def loader(self, split: str, shuffle: bool = False) -> DataLoader:
        self.setup()
        sets = [SessionDataset(d.splits[split].spikes, s) for s, d in enumerate(self.sessions)]
        sampler = SessionBatchSampler([len(s) for s in sets], self.batch_size, shuffle, self.seed)
        return DataLoader(
            ConcatDataset(sets),
            batch_sampler=sampler,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(self.seed),
        )  # never the global generator

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("valid")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test" if all("test" in d.splits for d in self.sessions) else "valid")


def session_of(batch) -> int:
    """The one session index of a batch (0 for a batch without one; batches never mix sessions)."""
    s = batch.get("session")
    if s is None:
        return 0
    s = torch.as_tensor(s).flatten()
    if (s != s[0]).any():
        raise ValueError(
            f"a batch mixes sessions {sorted(set(s.tolist()))}; every batch must come "
            "from one session (use MultiSessionDataModule)"
        )
    return int(s[0])
