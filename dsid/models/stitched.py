"""Multi-session stitching: per-session read-in/read-out maps around shared LFADS-style dynamics."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

import dsid.modules  # noqa: F401  (registers the built-in components)
from dsid.models.ndt import masked_nll
from dsid.models.sae import apply_augmentations, build_augmentations
from dsid.registry import ENCODERS, GENERATORS, OBSERVATIONS, PRIORS, READOUTS
from dsid.training.lightning_module import SAEModule, split_metrics


def stitched_model_cfg(model_cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """The model config for multi-session data: ``sae`` (the default kind) becomes ``stitched``."""
    cfg = dict(model_cfg)
    kind = cfg.get("kind", "sae")
    if kind == "sae":
        cfg["kind"] = "stitched"
    elif kind != "stitched":
        raise ValueError(f"data.files (several sessions) needs model.kind=stitched (or sae), "
                         f"got model.kind={kind}")
    return cfg


def _unit_variance(z: np.ndarray) -> np.ndarray:
    return z / np.maximum(z.std(0, keepdims=True), 1e-8)


def readin_maps(sessions: Sequence, size: int, ridge: float = 1e-2) -> List[tuple]:
    """Per-session affine read-in maps (W (N_in, k), b (k,), k <= size) onto a common space.

    When every session labels its training trials with ``condition`` and they share conditions,
    the common space is the top principal components of the concatenated condition-averaged
    held-in activity of all sessions, and each session's map is a ridge regression onto it
    (Pandarinath et al., 2018). Otherwise each session's map is its own top principal components.
    Projections have unit variance on the training data.
    """
    heldin = [np.asarray(~np.asarray(d.heldout, bool)) for d in sessions]
    trains = [np.asarray(d.splits["train"].spikes, np.float64)[..., h] for d, h in zip(sessions, heldin)]
    conds = [d.splits["train"].condition for d in sessions]
    shared = None
    if all(c is not None for c in conds):
        shared = sorted(set.intersection(*(set(np.asarray(c).tolist()) for c in conds)))
    maps = []
    if shared:
        psths = [np.concatenate([x[np.asarray(c) == k].mean(0) for k in shared])
                 for x, c in zip(trains, conds)]
        means = [p.mean(0) for p in psths]
        joint = np.concatenate([p - m for p, m in zip(psths, means)], axis=1)
        u, s, _ = np.linalg.svd(joint, full_matrices=False)
        k = min(size, int((s > 1e-8 * s[0]).sum()))
        z = _unit_variance(u[:, :k] * s[:k])
        for p, m in zip(psths, means):
            pc = p - m
            gram = pc.T @ pc
            reg = ridge * max(np.trace(gram) / gram.shape[0], 1e-8) * np.eye(gram.shape[0])
            w = np.linalg.solve(gram + reg, pc.T @ z)
            scale = np.maximum((pc @ w).std(0), 1e-8)
            maps.append((w / scale, -(m @ w) / scale))
        return maps
    for x in trains:
        flat = x.reshape(-1, x.shape[-1])
        mean = flat.mean(0)
        _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
        k = min(size, int((s > 1e-8 * max(s[0], 1e-12)).sum()))
        w = vt[:k].T / np.maximum(s[:k] / np.sqrt(flat.shape[0]), 1e-8)
        maps.append((w, -(mean @ w)))
    return maps


class StitchedSAE(nn.Module):
    """Session s: held-in input (N_in_s) -> read-in s (affine, to ``readin_size`` D) -> shared
    encoder and generator -> factors -> read-out s -> observation parameters of session s's N_s
    neurons. Read-ins start from :func:`readin_maps` (``init_from_data``); read-outs start from the
    observation model's parameters for each neuron's mean count. ``train_readin: false`` keeps the
    read-ins fixed at their initial maps.

    Config (``model``): ``kind: stitched``, ``readin_size``, ``train_readin`` and the keys of the
    ``sae`` model (``ic_size``, ``co_size``, ``factor_size``, ``encoder``, ``generator``, ...).
    """

    def __init__(self, model_cfg: Mapping[str, Any], data_info: Mapping[str, Any]):
        super().__init__()
        cfg = dict(model_cfg)
        sessions = data_info.get("sessions")
        if not sessions:
            raise ValueError("stitched model: needs multi-session data (data=multisession "
                             "data.files=[a.h5,b.h5,...])")
        ic_size, co_size = int(cfg["ic_size"]), int(cfg["co_size"])
        factor_size, readin_size = int(cfg["factor_size"]), int(cfg.get("readin_size", 16))
        self.n_sessions, self.readin_size = len(sessions), readin_size
        self.observation = OBSERVATIONS.build(cfg["observation"])
        self.readins, self.readouts = nn.ModuleList(), nn.ModuleList()
        for s, info in enumerate(sessions):
            heldout = np.asarray(info["heldout"], bool)
            self.register_buffer(f"heldin_idx_{s}", torch.nonzero(torch.as_tensor(~heldout)).flatten(),
                                 persistent=False)
            self.readins.append(nn.Linear(int((~heldout).sum()), readin_size))
            init_bias = None
            if info.get("mean_counts") is not None and hasattr(self.observation, "init_params"):
                init_bias = self.observation.init_params(np.asarray(info["mean_counts"], float))
            self.readouts.append(READOUTS.build(cfg.get("readout") or {"name": "linear"},
                                                factor_size=factor_size, n_neurons=int(heldout.size),
                                                n_params=self.observation.n_params, init_bias=init_bias))
        if not cfg.get("train_readin", True):
            self.readins.requires_grad_(False)
        self.encoder = ENCODERS.build(cfg["encoder"], input_size=readin_size, ic_size=ic_size)
        ci_out = getattr(self.encoder, "ci_output_size", 0) if co_size else 0
        self.generator = GENERATORS.build(cfg["generator"], ic_size=ic_size, co_size=co_size,
                                          factor_size=factor_size, ci_input_size=ci_out, ext_input_size=0)
        self.ic_prior = PRIORS.build(cfg.get("ic_prior") or {"name": "gaussian"}, size=ic_size)
        self.co_prior = PRIORS.build(cfg.get("co_prior") or {"name": "ar1"}, size=max(co_size, 1))
        self.augmentations = build_augmentations(cfg.get("augmentations"))
        self.current_session = 0

    @contextlib.contextmanager
    def use_session(self, session: int):
        """Make ``session`` the default of ``augment``/``forward``/``loss_terms``/``heldin_idx``
        inside the block (so single-session training code runs unchanged)."""
        self.heldin_idx_of(session)  # range check
        saved, self.current_session = self.current_session, int(session)
        try:
            yield self
        finally:
            self.current_session = saved

    @property
    def heldin_idx(self) -> torch.Tensor:
        """Held-in neuron indices of the current session."""
        return self.heldin_idx_of(self.current_session)

    def heldin_idx_of(self, session: int) -> torch.Tensor:
        if not 0 <= session < self.n_sessions:
            raise IndexError(f"stitched model: session {session} out of range 0..{self.n_sessions - 1}")
        return getattr(self, f"heldin_idx_{session}")

    @torch.no_grad()
    def init_from_data(self, sessions: Sequence) -> None:
        """Set the read-ins from the sessions' training data (:func:`readin_maps`)."""
        if len(sessions) != self.n_sessions:
            raise ValueError(f"stitched model: built for {self.n_sessions} sessions, given {len(sessions)}")
        for lin, (w, b) in zip(self.readins, readin_maps(sessions, self.readin_size)):
            k = w.shape[1]
            lin.weight[:k] = torch.as_tensor(w.T, dtype=lin.weight.dtype)
            lin.bias[:k] = torch.as_tensor(b, dtype=lin.bias.dtype)

    def augment(self, spikes: torch.Tensor, stage: str, generator: Optional[torch.Generator] = None,
                session: Optional[int] = None):
        """Select session ``session``'s (default: the current one's) held-in neurons and apply the
        augmentations.

        Shape:
            spikes: (B, T, N_s) -> x: (B, T, N_in_s), loss_mask: (B, T, N_in_s) or None
        """
        session = self.current_session if session is None else session
        return apply_augmentations(self.augmentations, spikes[..., self.heldin_idx_of(session)], stage,
                                   generator)

    def recurrent_weights(self) -> List[torch.Tensor]:
        fn = getattr(self.generator, "recurrent_weights", None)
        return list(fn()) if fn else []

    def forward(self, x: torch.Tensor, session: Optional[int] = None, n_forward: int = 0,
                sample: bool = True, ext: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Infer rates for session ``session``'s (default: the current one's) neurons from its
        held-in input.

        Shape:
            x: (B, T, N_in_s); returns dict: params (B, T+n_forward, N_s, P), rates (B, T+n_forward, N_s),
            factors (B, T+n_forward, F), ic_mean/ic_logvar/ic_sample (B, I), co_* (B, T+n_forward, C);
            n_observed = T
        """
        session = self.current_session if session is None else session
        self.heldin_idx_of(session)  # range check
        enc = self.encoder(self.readins[session](x))
        ic = enc.ic_mean + torch.exp(0.5 * enc.ic_logvar) * torch.randn_like(enc.ic_mean) \
            if sample else enc.ic_mean
        gen = self.generator(ic, ci=enc.ci, ext=ext, n_steps=x.shape[1] + n_forward, sample=sample)
        params = self.readouts[session](gen.factors)
        out = {"params": params, "rates": self.observation.mean(params), "factors": gen.factors,
               "states": gen.states, "ic_mean": enc.ic_mean, "ic_logvar": enc.ic_logvar, "ic_sample": ic,
               "n_observed": x.shape[1]}
        if gen.co_mean is not None:
            out.update(co_mean=gen.co_mean, co_logvar=gen.co_logvar, co_sample=gen.co_sample)
        return out

    def loss_terms(self, out: Dict[str, torch.Tensor], target: torch.Tensor,
                   heldin_mask: Optional[torch.Tensor] = None,
                   session: Optional[int] = None) -> Dict[str, torch.Tensor]:
        """Reconstruction NLL and KL terms, as in the ``sae`` model (session default: the current).

        Shape:
            target: (B, T', N_s) with T' >= T (forward bins last); heldin_mask: (B, T, N_in_s) or None
        """
        T = int(out.get("n_observed", target.shape[1]))  # inferred inputs exist only where there is data
        session = self.current_session if session is None else session
        terms = {"recon": masked_nll(self.observation, out["params"], target, self.heldin_idx_of(session),
                                     heldin_mask),
                 "kl_ic": self.ic_prior(out["ic_mean"], out["ic_logvar"], out["ic_sample"]).mean()}
        if "co_mean" in out:
            terms["kl_co"] = self.co_prior(out["co_mean"][:, :T], out["co_logvar"][:, :T],
                                           out["co_sample"][:, :T]).mean()
        else:
            terms["kl_co"] = target.new_zeros(())
        return terms


class SessionView(nn.Module):
    """One session of a stitched model with the single-session interface (for inference code)."""

    def __init__(self, model: StitchedSAE, session: int):
        super().__init__()
        self.inner, self.session = model, int(session)

    @property
    def observation(self):
        return self.inner.observation

    @property
    def heldin_idx(self):
        return self.inner.heldin_idx_of(self.session)

    def augment(self, spikes, stage, generator=None):
        return self.inner.augment(spikes, stage, generator, session=self.session)

    def forward(self, x, n_forward: int = 0, sample: bool = True, ext=None):
        """The stitched model's forward for this session.

        Shape:
            x: (B, T, N_in_s) -> dict as :meth:`StitchedSAE.forward`
        """
        return self.inner(x, session=self.session, n_forward=n_forward, sample=sample, ext=ext)

    def recurrent_weights(self):
        return self.inner.recurrent_weights()


def session_of(batch: Mapping[str, torch.Tensor]) -> int:
    """The one session index of a batch (batches never mix sessions)."""
    s = batch.get("session")
    if s is None:
        raise KeyError("stitched model: the batch has no 'session' index (use MultiSessionDataModule)")
    s = torch.as_tensor(s).flatten()
    if (s != s[0]).any():
        raise ValueError(f"stitched model: a batch mixes sessions {sorted(set(s.tolist()))}")
    return int(s[0])


def stitched_metrics(sessions: Sequence,
                     outputs: Sequence[Dict[str, Dict[str, np.ndarray]]]) -> Dict[str, float]:
    """Each session's metrics as ``split/s{i}/metric``, and their mean over sessions as ``split/metric``."""
    metrics, pooled = {}, {}
    for s, (data, out) in enumerate(zip(sessions, outputs)):
        for key, value in split_metrics(data, out).items():
            split, name = key.split("/", 1)
            metrics[f"{split}/s{s}/{name}"] = float(value)
            pooled.setdefault(key, []).append(float(value))
    metrics.update({k: float(np.mean(v)) for k, v in pooled.items()})
    return metrics


class StitchedModule(SAEModule):
    """The training module for :class:`StitchedSAE`: routes each batch to its session and logs
    per-session metrics."""

    def compute_loss(self, batch: Dict[str, torch.Tensor], stage: str, batch_idx: int = 0):
        with self.model.use_session(session_of(batch)):
            return super().compute_loss(batch, stage, batch_idx)

    def posterior_mean_outputs(self, split: str) -> List[Dict[str, np.ndarray]]:
        from dsid.inference import infer_split

        was_training = self.training
        out = [infer_split(SessionView(self.model, s), d.splits[split].spikes, n_samples=0)
               for s, d in enumerate(self.trainer.datamodule.sessions)]
        self.train(was_training)
        return out

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or self.trainer.datamodule is None:
            return
        every = int(self.train_cfg.get("metrics_every_n_epochs", 1) or 0)
        last = self.current_epoch + 1 >= (self.trainer.max_epochs or 0)
        if every <= 0 or (self.current_epoch % every and not last):
            return
        sessions = self.trainer.datamodule.sessions
        per_split = {s: self.posterior_mean_outputs(s) for s in ("train", "valid")}
        outputs = [{split: per_split[split][i] for split in per_split} for i in range(len(sessions))]
        self.log_dict(stitched_metrics(sessions, outputs), on_epoch=True)


def infer_and_score(module: StitchedModule, sessions: Sequence, n_samples: int = 20, batch_size: int = 256,
                    run_dir: Optional[Path] = None):
    """Posterior-averaged outputs of every session (written to ``RUN_DIR/inference_session{i}.h5``)
    and the per-session and mean metrics."""
    from dsid.inference import infer_module

    outputs = []
    for s, data in enumerate(sessions):
        out = Path(run_dir) / f"inference_session{s}.h5" if run_dir is not None else None
        outputs.append(infer_module(SessionView(module.model, s), data, n_samples=n_samples,
                                    batch_size=batch_size, out=out))
    return outputs, stitched_metrics(sessions, outputs)
