"""Read an offline W&B run (``wandb/offline-run-*/run-*.wandb``) back: history, summary, config.

The ``.wandb`` file is a log of protobuf ``Record`` messages in LevelDB's log framing: a 7-byte file
header, then 32 KiB blocks of chunks, each with a 7-byte header (checksum, length, type).
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

BLOCK = 32768
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def iter_records(path) -> Iterator[bytes]:
    """Raw record payloads of a ``.wandb`` file, in order."""
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file (bad header {data[:4]!r})")
    pos, pending = 7, b""
    while pos + CHUNK_HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < CHUNK_HEADER:  # block trailer padding
            pos += left_in_block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        payload = data[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        if kind == 0 and length == 0:
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0
            continue
        if kind == FULL:
            yield payload
        elif kind == FIRST:
            pending = payload
        elif kind == MIDDLE:
            pending += payload
        elif kind == LAST:
            yield pending + payload
            pending = b""


def _items(items) -> Dict[str, Any]:
    out = {}
    for it in items:
        key = it.key or "/".join(it.nested_key)
        try:
            out[key] = json.loads(it.value_json)
        except (ValueError, TypeError):
            out[key] = it.value_json
    return out


def read_offline_run(run_path, wait_s: float = 30.0) -> Dict[str, Any]:
    """``{"history": [row, ...], "summary": {...}, "config": {...}}`` of one offline run; the
    summary holds the last logged value of every history key, updated by explicit summary records.

    ``run_path`` is a ``.wandb`` file, an ``offline-run-*`` folder, or a folder holding ``wandb/``
    (the newest offline run is read). W&B's writer may still be flushing a just-finished run, so
    the file is re-read until it holds the run's exit record, for at most ``wait_s`` seconds.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(run_path)
    if path.is_dir():
        candidates = sorted(path.glob("run-*.wandb")) or sorted(
            path.glob("wandb/offline-run-*/run-*.wandb")
        )
        if not candidates:
            raise FileNotFoundError(f"{run_path}: no offline W&B run found")
        path = candidates[-1]
    deadline = time.monotonic() + wait_s
    while True:
        records = []
        for raw in iter_records(path):
            rec = pb.Record()
            rec.ParseFromString(raw)
            records.append(rec)
        if (
            any(r.WhichOneof("record_type") == "exit" for r in records)
            or time.monotonic() > deadline
        ):
            break
        time.sleep(0.25)
    history: List[Dict[str, Any]] = []
    summary: Dict[str, Any] = {}
    config: Dict[str, Any] = {}
    for rec in records:
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            history.append(_items(rec.history.item))
        elif kind == "summary":
            summary.update(_items(rec.summary.update))
        elif kind == "config":
            config.update(_items(rec.config.update))
        elif kind == "run":  # the config given when the run was made
            config.update(_items(rec.run.config.update))
    # W&B's summary is the last logged value of every key unless set explicitly; summary records may
    # be written late (at exit), so rebuild it from the history and apply explicit updates on top
    merged: Dict[str, Any] = {}
    for row in history:
        merged.update(row)
    merged.update(summary)
    return {"history": history, "summary": merged, "config": config}
