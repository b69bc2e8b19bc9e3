// The LFADS controller -> generator -> factors loop over T bins, forward and backward through time.
//
// Per bin t (time-major tensors, B trials):
//   controller (t < Tc only): gi_c = ci_proj[t] + f_{t-1} Wc_f^T;  c_t = GRU_c(gi_c, c_{t-1})
//     [m | lv] = (c_t * mask_c[t]) W_head^T + b_head;  co_t = m + exp(lv / 2) eps[t]  (m without eps)
//     gi_g = ext_proj[t] + co_t Wg_co^T
//   otherwise (no controller, or past the encoded window): gi_g = ext_proj[t], co_t = 0
//   generator: g_t = GRU_g(gi_g, g_{t-1});  f_t = (g_t * mask_g[t]) W_fac^T
// Groups: G copies of this network side by side (a multi-area model's areas), each with its own weights:
// every weight has a leading group axis (G, rows, cols), every feature axis holds the groups' blocks one
// after another ([group 0 | group 1 | ...]; the head's [m | lv] per group), and each product is
// block-diagonal (groups.h). Only the message feedback couples the groups.
// Optional message feedback (P > 0; a multi-area model's coupling): the signal s_t (f_t, or g_t with
// msg_from_state; all groups) is projected, p_t = s_t Enc^T (P columns), and the message entering bin t
// mixes past projections over lags (lag_mixing.h; before the first bin the initial signal's):
// m_t = sum_l Lag[l] * p_{t-1-l};  gi_g += m_t Wg_msg^T (Wg_msg: (G * 3H, P)). Ms holds m_0 .. m_T (m_T: the
// message after the last bin), an output with a gradient like the others.
// ci_proj and ext_proj hold every input projection that does not depend on the state (biases included;
// ext_proj may be the generator's input bias broadcast over bins and trials; ci_proj may have B / k rows,
// each read by k consecutive batch entries: the posterior samples of one trial). Without keep (inference)
// only one bin's gates are held at a time.
// Empty eps / mask tensors mean no sampling / no dropout. The backward collects the per-bin gradients of
// every pre-activation and computes each weight gradient as one matrix product per group over all bins.
#include <torch/extension.h>

#include <vector>

#include "groups.h"
#include "gru_kernels.h"
#include "lag_mixing.h"

namespace dsid {

namespace {
template <typename T>
Rows<T> mask_rows(const at::Tensor& mask, int64_t t, int64_t width) {  // bin t of a mask; absent if empty
  return {mask.numel() ? mask.select(0, t).data_ptr<T>() : nullptr, width};
}
at::Tensor shifted(const at::Tensor& first, const at::Tensor& seq, int64_t n) {
  // [first, seq[0], ..., seq[n - 2]] as (n * B, D)
  return at::cat({first.unsqueeze(0), seq.narrow(0, 0, n - 1)}, 0).reshape({-1, first.size(1)});
}
at::Tensor part(const at::Tensor& head_t, int64_t G, int64_t which) {  // (B, G * 2C) -> m or lv, (B, G, C)
  return head_t.view({head_t.size(0), G, 2, -1}).select(2, which);
}
}  // namespace

std::vector<at::Tensor> lfads_scan_forward(at::Tensor ci_proj, at::Tensor ext_proj, at::Tensor g0, at::Tensor f0,
                                           at::Tensor wc_f, at::Tensor wc_hh, at::Tensor bc_hh,
                                           at::Tensor w_head, at::Tensor b_head, at::Tensor wg_co,
                                           at::Tensor wg_hh, at::Tensor bg_hh, at::Tensor w_fac, at::Tensor msg_enc,
                                           at::Tensor msg_lag, at::Tensor wg_msg, at::Tensor eps, at::Tensor mask_c,
                                           at::Tensor mask_g, bool msg_from_state, double clip_c, double clip_g,
                                           bool keep) {
  const int64_t G = wg_hh.size(0), Hg = wg_hh.size(2), F = w_fac.size(1);
  const int64_t T = ext_proj.size(0), B = ext_proj.size(1), GH = G * Hg;
  const int64_t Tc = ci_proj.numel() ? ci_proj.size(0) : 0;
  const int64_t Hc = Tc ? wc_hh.size(2) : 0, C = Tc ? wg_co.size(2) : 0, GHc = G * Hc;
  auto o = ext_proj.options();
  // without keep (inference) the gates of one bin at a time: nothing is kept for a backward
  auto Fs = at::empty({T, B, G * F}, o), Gs = at::empty({T, B, GH}, o), gates_g = at::empty({keep ? T : 1, B, 4 * GH}, o);
  auto Cs = at::empty({Tc, B, GHc}, o), gates_c = at::empty({keep ? Tc : std::min<int64_t>(Tc, 1), B, 4 * GHc}, o);
  auto head = at::empty({Tc, B, G * 2 * C}, o), co = at::empty({Tc, B, G * C}, o);
  auto gic = at::empty({B, 3 * GHc}, o), ghc = at::empty({B, 3 * GHc}, o), cd = at::empty({B, GHc}, o);
  auto gig = at::empty({B, 3 * GH}, o), ghg = at::empty({B, 3 * GH}, o), gd = at::empty({B, GH}, o);
  auto c0 = at::zeros({B, GHc}, o), std_t = at::empty({B, G, C}, o);
  if (ext_proj.stride(2) != 1) ext_proj = ext_proj.contiguous();
  TORCH_CHECK(!Tc || B % ci_proj.size(1) == 0, "lfads_scan: ", B, " batch entries for ", ci_proj.size(1), " ci rows");
  const int64_t ci_repeat = Tc ? B / ci_proj.size(1) : 1;  // each ci_proj row serves ci_repeat batch entries
  const int64_t P = msg_enc.numel() ? msg_enc.size(0) : 0, L = P ? msg_lag.size(0) : 0;
  auto Ph = at::empty({P ? T + 1 : 0, B, P}, o), Ms = at::empty({P ? T + 1 : 0, B, P}, o);
  if (P) {
    at::Tensor p0 = Ph[0];
    at::mm_out(p0, msg_from_state ? g0 : f0, msg_enc.t());
  }
  const int64_t ext_stride = ext_proj.stride(1);  // 0 for a bias broadcast over the trials
  AT_DISPATCH_FLOATING_TYPES(ext_proj.scalar_type(), "lfads_scan_forward", [&] {
    using Row = Rows<scalar_t>;
    auto rows = [](const at::Tensor& x, int64_t width) { return rows_of<scalar_t>(x, width); };
    for (int64_t t = 0; t < T; ++t) {
      at::Tensor f_prev = t ? Fs[t - 1] : f0, g_prev = t ? Gs[t - 1] : g0;
      Row gi2{};
      if (t < Tc) {
        at::Tensor c_prev = t ? Cs[t - 1] : c0;
        group_mm(gic, f_prev, wc_f, true, false);
        group_mm(ghc, c_prev, wc_hh, true, false);
        const Row ci_t{ci_proj[t].data_ptr<scalar_t>(), 3 * GHc, ci_repeat};
        for (int64_t g = 0; g < G; ++g) {
          GruForward<scalar_t> ctrl{group_of(ci_t, g, 3 * Hc), group_of(rows(gic, 3 * GHc), g, 3 * Hc),
                                    group_of(rows(ghc, 3 * GHc), g, 3 * Hc), nullptr,
                                    bc_hh.data_ptr<scalar_t>() + g * 3 * Hc, group_of(rows(c_prev, GHc), g, Hc),
                                    group_of(rows(gates_c[keep ? t : 0], 4 * GHc), g, 4 * Hc),
                                    group_of(rows(Cs[t], GHc), g, Hc), Row{}, static_cast<scalar_t>(clip_c)};
          gru_forward<scalar_t>(B, Hc, ctrl);
        }
        at::Tensor c_in = Cs[t];
        if (mask_c.numel()) c_in = at::mul_out(cd, Cs[t], mask_c[t]);
        at::Tensor h_t = head[t];
        group_mm(h_t, c_in, w_head, true, false);
        h_t.add_(b_head);
        at::Tensor co_t = co[t].view({B, G, C});
        if (eps.numel()) {
          at::exp_out(std_t, part(h_t, G, 1) * 0.5);
          at::addcmul_out(co_t, part(h_t, G, 0), std_t, eps[t].view({B, G, C}));
        } else {
          co_t.copy_(part(h_t, G, 0));
        }
        group_mm(gig, co[t], wg_co, true, false);
        gi2 = rows(gig, 3 * GH);
      }
      if (P) {
        mix_lags<scalar_t>(Ms[t].data_ptr<scalar_t>(), Ph.data_ptr<scalar_t>(), msg_lag.data_ptr<scalar_t>(), t, L, B, P);
        if (gi2) gig.addmm_(Ms[t], wg_msg.t());
        else at::mm_out(gig, Ms[t], wg_msg.t());
        gi2 = rows(gig, 3 * GH);
      }
      group_mm(ghg, g_prev, wg_hh, true, false);
      const Row ext_t{ext_proj[t].data_ptr<scalar_t>(), ext_stride};
      for (int64_t g = 0; g < G; ++g) {
        GruForward<scalar_t> gen{group_of(ext_t, g, 3 * Hg), group_of(gi2, g, 3 * Hg),
                                 group_of(rows(ghg, 3 * GH), g, 3 * Hg), nullptr,
                                 bg_hh.data_ptr<scalar_t>() + g * 3 * Hg, group_of(rows(g_prev, GH), g, Hg),
                                 group_of(rows(gates_g[keep ? t : 0], 4 * GH), g, 4 * Hg),
                                 group_of(rows(Gs[t], GH), g, Hg), Row{}, static_cast<scalar_t>(clip_g)};
        gru_forward<scalar_t>(B, Hg, gen);
      }
      at::Tensor g_in = Gs[t];
      if (mask_g.numel()) g_in = at::mul_out(gd, Gs[t], mask_g[t]);
      group_mm(Fs[t], g_in, w_fac, true, false);
      if (P) {
        at::Tensor p_t = Ph[t + 1];
        at::mm_out(p_t, msg_from_state ? Gs[t] : Fs[t], msg_enc.t());
      }
    }
    if (P) mix_lags<scalar_t>(Ms[T].data_ptr<scalar_t>(), Ph.data_ptr<scalar_t>(), msg_lag.data_ptr<scalar_t>(), T, L, B, P);
  });
  return {Fs, Gs, head, co, Ms, Cs, gates_c, gates_g, Ph};
}

std::vector<at::Tensor> lfads_scan_backward(at::Tensor dF, at::Tensor dG, at::Tensor dhead, at::Tensor dco_out,
                                            at::Tensor dMs, at::Tensor g0, at::Tensor f0, at::Tensor wc_f,
                                            at::Tensor wc_hh, at::Tensor w_head, at::Tensor wg_co, at::Tensor wg_hh,
                                            at::Tensor w_fac, at::Tensor msg_enc, at::Tensor msg_lag,
                                            at::Tensor wg_msg, at::Tensor eps, at::Tensor mask_c, at::Tensor mask_g,
                                            at::Tensor Fs, at::Tensor Gs, at::Tensor head, at::Tensor co,
                                            at::Tensor Ms, at::Tensor Cs, at::Tensor gates_c, at::Tensor gates_g,
                                            at::Tensor Ph, bool msg_from_state, double clip_c, double clip_g) {
  dF = dF.contiguous();
  dG = dG.contiguous();
  const int64_t G = wg_hh.size(0), T = Gs.size(0), B = Gs.size(1), GH = Gs.size(2), Hg = GH / G, GF = Fs.size(2);
  const int64_t Tc = Cs.size(0), GHc = Cs.size(2), Hc = GHc / G, C = co.size(2) / G;
  const int64_t P = Ms.size(2), L = P ? msg_lag.size(0) : 0;
  auto o = Gs.options();
  auto DF = at::empty({T, B, GF}, o), dgi_g = at::empty({T, B, 3 * GH}, o), dgh_g = at::empty({T, B, 3 * GH}, o);
  auto dgi_c = at::empty({Tc, B, 3 * GHc}, o), dgh_c = at::empty({Tc, B, 3 * GHc}, o);
  auto DH = at::empty({Tc, B, G * 2 * C}, o);
  auto dg = at::zeros({B, GH}, o), dc = at::zeros({B, GHc}, o), df = at::zeros({B, GF}, o);
  auto dgd = at::empty({B, GH}, o), dcd = at::empty({B, GHc}, o), dco = at::empty({B, G * C}, o);
  auto c0 = at::zeros({B, GHc}, o);
  // message feedback: gradients of the projections (dPh) and of the messages (DM), and of one bin's state
  auto dPh = at::zeros({P ? T + 1 : 0, B, P}, o), DM = at::empty({P ? T + 1 : 0, B, P}, o);
  auto dgs = at::empty({P && msg_from_state ? B : 0, GH}, o);
  if (P) dMs = dMs.contiguous();
  AT_DISPATCH_FLOATING_TYPES(Gs.scalar_type(), "lfads_scan_backward", [&] {
    using Row = Rows<scalar_t>;
    auto rows = [](const at::Tensor& x, int64_t width) { return rows_of<scalar_t>(x, width); };
    const scalar_t* lag = P ? msg_lag.data_ptr<scalar_t>() : nullptr;
    if (P) {  // the message after the last bin reaches the model only through the Ms output
      DM[T].copy_(dMs[T]);
      push_lags<scalar_t>(dPh.data_ptr<scalar_t>(), DM[T].data_ptr<scalar_t>(), lag, T, L, B, P);
    }
    for (int64_t t = T - 1; t >= 0; --t) {
      at::Tensor df_t = DF[t], dG_t = dG[t];
      at::add_out(df_t, dF[t], df);
      if (P && msg_from_state) dG_t = at::addmm_out(dgs, dG[t], dPh[t + 1], msg_enc);
      else if (P) df_t.addmm_(dPh[t + 1], msg_enc);
      group_mm(dgd, df_t, w_fac, false, false);
      at::Tensor g_prev = t ? Gs[t - 1] : g0;
      at::Tensor g_before = g_prev.contiguous();
      for (int64_t g = 0; g < G; ++g) {
        GruBackward<scalar_t> gen{group_of(rows(dg, GH), g, Hg), group_of(rows(dG_t, GH), g, Hg),
                                  group_of(rows(dgd, GH), g, Hg), group_of(mask_rows<scalar_t>(mask_g, t, GH), g, Hg),
                                  group_of(rows(Gs[t], GH), g, Hg), group_of(rows(g_before, GH), g, Hg),
                                  group_of(rows(gates_g[t], 4 * GH), g, 4 * Hg),
                                  group_of(rows(dgi_g[t], 3 * GH), g, 3 * Hg),
                                  group_of(rows(dgh_g[t], 3 * GH), g, 3 * Hg), Row{}, static_cast<scalar_t>(clip_g)};
        gru_backward<scalar_t>(B, Hg, gen);
      }
      group_mm(dg, dgh_g[t], wg_hh, false, true);
      if (P) {
        at::Tensor dm = DM[t];
        at::addmm_out(dm, dMs[t], dgi_g[t], wg_msg);
        push_lags<scalar_t>(dPh.data_ptr<scalar_t>(), dm.data_ptr<scalar_t>(), lag, t, L, B, P);
      }
      if (t >= Tc) {
        df.zero_();
        continue;
      }
      group_mm(dco, dgi_g[t], wg_co, false, false);
      dco.add_(dco_out[t]);
      at::Tensor dco_v = dco.view({B, G, C}), dm = part(DH[t], G, 0), dlv = part(DH[t], G, 1);
      at::add_out(dm, dco_v, part(dhead[t], G, 0));
      if (eps.numel()) {  // co = m + exp(lv / 2) eps: d co / d lv = (co - m) / 2
        at::Tensor noise = co[t].view({B, G, C}) - part(head[t], G, 0);
        at::addcmul_out(dlv, part(dhead[t], G, 1), dco_v, noise, 0.5);
      } else {
        dlv.copy_(part(dhead[t], G, 1));
      }
      group_mm(dcd, DH[t], w_head, false, false);
      at::Tensor c_prev = t ? Cs[t - 1] : c0;
      for (int64_t g = 0; g < G; ++g) {
        GruBackward<scalar_t> ctrl{group_of(rows(dc, GHc), g, Hc), Row{}, group_of(rows(dcd, GHc), g, Hc),
                                   group_of(mask_rows<scalar_t>(mask_c, t, GHc), g, Hc),
                                   group_of(rows(Cs[t], GHc), g, Hc), group_of(rows(c_prev, GHc), g, Hc),
                                   group_of(rows(gates_c[t], 4 * GHc), g, 4 * Hc),
                                   group_of(rows(dgi_c[t], 3 * GHc), g, 3 * Hc),
                                   group_of(rows(dgh_c[t], 3 * GHc), g, 3 * Hc), Row{}, static_cast<scalar_t>(clip_c)};
        gru_backward<scalar_t>(B, Hc, ctrl);
      }
      group_mm(dc, dgh_c[t], wc_hh, false, true);
      group_mm(df, dgi_c[t], wc_f, false, false);
    }
  });
  at::Tensor d_msg_enc, d_msg_lag, d_wg_msg;
  if (P) {  // the initial signal's share, then the feedback's weights, each one product over all bins
    (msg_from_state ? dg : df).addmm_(dPh[0], msg_enc);
    const at::Tensor& s0 = msg_from_state ? g0 : f0;
    auto s_all = at::cat({s0.unsqueeze(0), msg_from_state ? Gs : Fs}, 0);
    d_msg_enc = at::mm(dPh.view({(T + 1) * B, P}).t(), s_all.view({(T + 1) * B, s0.size(1)}));
    d_wg_msg = at::mm(dgi_g.view({T * B, 3 * GH}).t(), Ms.narrow(0, 0, T).reshape({T * B, P}));
    d_msg_lag = at::zeros({L, P}, o);
    for (int64_t l = 0; l < L; ++l) {  // lag l pairs m_t with Ph[max(t - l, 0)]
      const int64_t n = T + 1 - l;
      if (n > 0) d_msg_lag[l].add_((DM.narrow(0, l, n) * Ph.narrow(0, 0, n)).sum({0, 1}));
      if (l) d_msg_lag[l].add_((DM.narrow(0, 0, std::min(l, T + 1)).sum(0) * Ph[0]).sum(0));
    }
  }
  auto g_in = mask_g.numel() ? Gs * mask_g : Gs;
  auto d_w_fac = group_weight_grad(DF.view({T * B, GF}), g_in.reshape({T * B, GH}), G);
  auto flat_g = dgh_g.view({T * B, 3 * GH});
  auto d_wg_hh = group_weight_grad(flat_g, shifted(g0, Gs, T), G);
  auto d_bg_hh = flat_g.sum(0);
  at::Tensor d_wg_co, d_w_head, d_b_head, d_wc_hh, d_bc_hh, d_wc_f;
  if (Tc) {
    d_wg_co = group_weight_grad(dgi_g.narrow(0, 0, Tc).reshape({Tc * B, 3 * GH}), co.view({Tc * B, G * C}), G);
    auto c_in = mask_c.numel() ? Cs * mask_c : Cs;
    auto flat_h = DH.view({Tc * B, G * 2 * C});
    d_w_head = group_weight_grad(flat_h, c_in.reshape({Tc * B, GHc}), G);
    d_b_head = flat_h.sum(0);
    auto flat_c = dgh_c.view({Tc * B, 3 * GHc});
    d_wc_hh = group_weight_grad(flat_c, shifted(c0, Cs, Tc), G);
    d_bc_hh = flat_c.sum(0);
    d_wc_f = group_weight_grad(dgi_c.view({Tc * B, 3 * GHc}), shifted(f0, Fs, Tc), G);
  }
  return {dgi_c, dgi_g, dg,       df,       d_wc_f,    d_wc_hh,   d_bc_hh,  d_w_head,
          d_b_head, d_wg_co, d_wg_hh, d_bg_hh, d_w_fac, d_msg_enc, d_msg_lag, d_wg_msg};
}

}  // namespace dsid
