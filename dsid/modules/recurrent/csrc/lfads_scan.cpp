// The LFADS controller -> generator -> factors loop over T bins, forward and backward through time.
//
// Per bin t (time-major tensors, B trials):
//   controller (t < Tc only): gi_c = ci_proj[t] + f_{t-1} Wc_f^T;  c_t = GRU_c(gi_c, c_{t-1})
//     [m | lv] = (c_t * mask_c[t]) W_head^T + b_head;  co_t = m + exp(lv / 2) eps[t]  (m without eps)
//     gi_g = ext_proj[t] + co_t Wg_co^T
//   otherwise (no controller, or past the encoded window): gi_g = ext_proj[t], co_t = 0
//   generator: g_t = GRU_g(gi_g, g_{t-1});  f_t = (g_t * mask_g[t]) W_fac^T
// Optional message feedback (P > 0; a multi-area model's coupling, its areas stacked as one block-structured
// generator): the signal s_t (f_t, or g_t with msg_from_state) is projected, p_t = s_t Enc^T (P columns), and
// the message entering bin t mixes past projections over lags (lag_mixing.h; before the first bin the initial
// signal's): m_t = sum_l Lag[l] * p_{t-1-l};  gi_g += m_t Wg_msg^T. Ms holds m_0 .. m_T (m_T: the message
// after the last bin), an output with a gradient like the others.
// ci_proj and ext_proj hold every input projection that does not depend on the state (biases included;
// ext_proj may be the generator's input bias broadcast over bins and trials; ci_proj may have B / k rows,
// each read by k consecutive batch entries: the posterior samples of one trial). Without keep (inference)
// only one bin's gates are held at a time.
// Empty eps / mask tensors mean no sampling / no dropout. The backward collects the per-bin gradients of
// every pre-activation and computes each weight gradient as one matrix product over all bins.
#include <torch/extension.h>

#include <vector>

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
}  // namespace

std::vector<at::Tensor> lfads_scan_forward(at::Tensor ci_proj, at::Tensor ext_proj, at::Tensor g0, at::Tensor f0,
                                           at::Tensor wc_f, at::Tensor wc_hh, at::Tensor bc_hh,
                                           at::Tensor w_head, at::Tensor b_head, at::Tensor wg_co,
                                           at::Tensor wg_hh, at::Tensor bg_hh, at::Tensor w_fac, at::Tensor msg_enc,
                                           at::Tensor msg_lag, at::Tensor wg_msg, at::Tensor eps, at::Tensor mask_c,
                                           at::Tensor mask_g, bool msg_from_state, double clip_c, double clip_g,
                                           bool keep) {
  const int64_t T = ext_proj.size(0), B = ext_proj.size(1), Hg = g0.size(1), F = f0.size(1);
  const int64_t Tc = ci_proj.numel() ? ci_proj.size(0) : 0;
  const int64_t Hc = Tc ? wc_hh.size(1) : 0, C = Tc ? wg_co.size(1) : 0;
  auto o = ext_proj.options();
  // without keep (inference) the gates of one bin at a time: nothing is kept for a backward
  auto Fs = at::empty({T, B, F}, o), Gs = at::empty({T, B, Hg}, o), gates_g = at::empty({keep ? T : 1, B, 4 * Hg}, o);
  auto Cs = at::empty({Tc, B, Hc}, o), gates_c = at::empty({keep ? Tc : std::min<int64_t>(Tc, 1), B, 4 * Hc}, o);
  auto head = at::empty({Tc, B, 2 * C}, o), co = at::empty({Tc, B, C}, o);
  auto gic = at::empty({B, 3 * Hc}, o), ghc = at::empty({B, 3 * Hc}, o), cd = at::empty({B, Hc}, o);
  auto gig = at::empty({B, 3 * Hg}, o), ghg = at::empty({B, 3 * Hg}, o), gd = at::empty({B, Hg}, o);
  auto c0 = at::zeros({B, Hc}, o), std_t = at::empty({B, C}, o);
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
        at::mm_out(gic, f_prev, wc_f.t());
        at::mm_out(ghc, c_prev, wc_hh.t());
        GruForward<scalar_t> ctrl{Row{ci_proj[t].data_ptr<scalar_t>(), 3 * Hc, ci_repeat},
                                  rows(gic, 3 * Hc), rows(ghc, 3 * Hc), nullptr, bc_hh.data_ptr<scalar_t>(),
                                  rows(c_prev, Hc), rows(gates_c[keep ? t : 0], 4 * Hc), rows(Cs[t], Hc), Row{},
                                  static_cast<scalar_t>(clip_c)};
        gru_forward<scalar_t>(B, Hc, ctrl);
        at::Tensor c_in = Cs[t];
        if (mask_c.numel()) c_in = at::mul_out(cd, Cs[t], mask_c[t]);
        at::Tensor h_t = head[t];
        at::addmm_out(h_t, b_head, c_in, w_head.t());
        at::Tensor co_t = co[t];
        if (eps.numel()) {
          at::exp_out(std_t, h_t.narrow(1, C, C) * 0.5);
          at::addcmul_out(co_t, h_t.narrow(1, 0, C), std_t, eps[t]);
        } else {
          co_t.copy_(h_t.narrow(1, 0, C));
        }
        at::mm_out(gig, co_t, wg_co.t());
        gi2 = rows(gig, 3 * Hg);
      }
      if (P) {
        mix_lags<scalar_t>(Ms[t].data_ptr<scalar_t>(), Ph.data_ptr<scalar_t>(), msg_lag.data_ptr<scalar_t>(), t, L, B, P);
        if (gi2) gig.addmm_(Ms[t], wg_msg.t());
        else at::mm_out(gig, Ms[t], wg_msg.t());
        gi2 = rows(gig, 3 * Hg);
      }
      at::mm_out(ghg, g_prev, wg_hh.t());
      GruForward<scalar_t> gen{Row{ext_proj[t].data_ptr<scalar_t>(), ext_stride}, gi2, rows(ghg, 3 * Hg), nullptr,
                               bg_hh.data_ptr<scalar_t>(), rows(g_prev, Hg), rows(gates_g[keep ? t : 0], 4 * Hg),
                               rows(Gs[t], Hg), Row{}, static_cast<scalar_t>(clip_g)};
      gru_forward<scalar_t>(B, Hg, gen);
      at::Tensor g_in = Gs[t];
      if (mask_g.numel()) g_in = at::mul_out(gd, Gs[t], mask_g[t]);
      at::Tensor f_t = Fs[t];
      at::mm_out(f_t, g_in, w_fac.t());
      if (P) {
        at::Tensor p_t = Ph[t + 1];
        at::mm_out(p_t, msg_from_state ? Gs[t] : f_t, msg_enc.t());
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
  const int64_t P = Ms.size(2), L = P ? msg_lag.size(0) : 0;
  const int64_t T = Gs.size(0), B = Gs.size(1), Hg = Gs.size(2), F = Fs.size(2);
  const int64_t Tc = Cs.size(0), Hc = Cs.size(2), C = co.size(2);
  auto o = Gs.options();
  auto DF = at::empty({T, B, F}, o), dgi_g = at::empty({T, B, 3 * Hg}, o), dgh_g = at::empty({T, B, 3 * Hg}, o);
  auto dgi_c = at::empty({Tc, B, 3 * Hc}, o), dgh_c = at::empty({Tc, B, 3 * Hc}, o);
  auto DH = at::empty({Tc, B, 2 * C}, o);
  auto dg = at::zeros({B, Hg}, o), dc = at::zeros({B, Hc}, o), df = at::zeros({B, F}, o);
  auto dgd = at::empty({B, Hg}, o), dcd = at::empty({B, Hc}, o), dco = at::empty({B, C}, o);
  auto c0 = at::zeros({B, Hc}, o);
  // message feedback: gradients of the projections (dPh) and of the messages (DM), and of one bin's state
  auto dPh = at::zeros({P ? T + 1 : 0, B, P}, o), DM = at::empty({P ? T + 1 : 0, B, P}, o);
  auto dgs = at::empty({P && msg_from_state ? B : 0, Hg}, o);
  if (P) dMs = dMs.contiguous();
  AT_DISPATCH_FLOATING_TYPES(Gs.scalar_type(), "lfads_scan_backward", [&] {
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
      at::mm_out(dgd, df_t, w_fac);
      at::Tensor g_prev = t ? Gs[t - 1] : g0;
      at::Tensor g_before = g_prev.contiguous();
      GruBackward<scalar_t> gen{rows(dg, Hg), rows(dG_t, Hg), rows(dgd, Hg), mask_rows<scalar_t>(mask_g, t, Hg),
                                rows(Gs[t], Hg), rows(g_before, Hg), rows(gates_g[t], 4 * Hg), rows(dgi_g[t], 3 * Hg),
                                rows(dgh_g[t], 3 * Hg), Rows<scalar_t>{}, static_cast<scalar_t>(clip_g)};
      gru_backward<scalar_t>(B, Hg, gen);
      dg.addmm_(dgh_g[t], wg_hh);
      if (P) {
        at::Tensor dm = DM[t];
        at::addmm_out(dm, dMs[t], dgi_g[t], wg_msg);
        push_lags<scalar_t>(dPh.data_ptr<scalar_t>(), dm.data_ptr<scalar_t>(), lag, t, L, B, P);
      }
      if (t >= Tc) {
        df.zero_();
        continue;
      }
      at::mm_out(dco, dgi_g[t], wg_co);
      dco.add_(dco_out[t]);
      at::Tensor dm = DH[t].narrow(1, 0, C), dlv = DH[t].narrow(1, C, C);
      at::add_out(dm, dco, dhead[t].narrow(1, 0, C));
      if (eps.numel()) {  // co = m + exp(lv / 2) eps: d co / d lv = (co - m) / 2
        at::Tensor noise = co[t] - head[t].narrow(1, 0, C);
        at::addcmul_out(dlv, dhead[t].narrow(1, C, C), dco, noise, 0.5);
      } else {
        dlv.copy_(dhead[t].narrow(1, C, C));
      }
      at::mm_out(dcd, DH[t], w_head);
      at::Tensor c_prev = t ? Cs[t - 1] : c0;
      GruBackward<scalar_t> ctrl{rows(dc, Hc), Rows<scalar_t>{}, rows(dcd, Hc), mask_rows<scalar_t>(mask_c, t, Hc),
                                 rows(Cs[t], Hc), rows(c_prev, Hc), rows(gates_c[t], 4 * Hc), rows(dgi_c[t], 3 * Hc),
                                 rows(dgh_c[t], 3 * Hc), Rows<scalar_t>{}, static_cast<scalar_t>(clip_c)};
      gru_backward<scalar_t>(B, Hc, ctrl);
      dc.addmm_(dgh_c[t], wc_hh);
      at::mm_out(df, dgi_c[t], wc_f);
    }
  });
  at::Tensor d_msg_enc, d_msg_lag, d_wg_msg;
  if (P) {  // the initial signal's share, then the feedback's weights, each one product over all bins
    (msg_from_state ? dg : df).addmm_(dPh[0], msg_enc);
    const at::Tensor& s0 = msg_from_state ? g0 : f0;
    auto s_all = at::cat({s0.unsqueeze(0), msg_from_state ? Gs : Fs}, 0);
    d_msg_enc = at::mm(dPh.view({(T + 1) * B, P}).t(), s_all.view({(T + 1) * B, s0.size(1)}));
    d_wg_msg = at::mm(dgi_g.view({T * B, 3 * Hg}).t(), Ms.narrow(0, 0, T).reshape({T * B, P}));
    d_msg_lag = at::zeros({L, P}, o);
    for (int64_t l = 0; l < L; ++l) {  // lag l pairs m_t with Ph[max(t - l, 0)]
      const int64_t n = T + 1 - l;
      if (n > 0) d_msg_lag[l].add_((DM.narrow(0, l, n) * Ph.narrow(0, 0, n)).sum({0, 1}));
      if (l) d_msg_lag[l].add_((DM.narrow(0, 0, std::min(l, T + 1)).sum(0) * Ph[0]).sum(0));
    }
  }
  auto g_in = mask_g.numel() ? Gs * mask_g : Gs;
  auto d_w_fac = at::mm(DF.view({T * B, F}).t(), g_in.reshape({T * B, Hg}));
  auto flat_g = dgh_g.view({T * B, 3 * Hg});
  auto d_wg_hh = at::mm(flat_g.t(), shifted(g0, Gs, T));
  auto d_bg_hh = flat_g.sum(0);
  at::Tensor d_wg_co, d_w_head, d_b_head, d_wc_hh, d_bc_hh, d_wc_f;
  if (Tc) {
    d_wg_co = at::mm(dgi_g.narrow(0, 0, Tc).reshape({Tc * B, 3 * Hg}).t(), co.view({Tc * B, C}));
    auto c_in = mask_c.numel() ? Cs * mask_c : Cs;
    auto flat_h = DH.view({Tc * B, 2 * C});
    d_w_head = at::mm(flat_h.t(), c_in.reshape({Tc * B, Hc}));
    d_b_head = flat_h.sum(0);
    auto flat_c = dgh_c.view({Tc * B, 3 * Hc});
    d_wc_hh = at::mm(flat_c.t(), shifted(c0, Cs, Tc));
    d_bc_hh = flat_c.sum(0);
    d_wc_f = at::mm(dgi_c.view({Tc * B, 3 * Hc}).t(), shifted(f0, Fs, Tc));
  }
  return {dgi_c, dgi_g, dg,       df,       d_wc_f,    d_wc_hh,   d_bc_hh,  d_w_head,
          d_b_head, d_wg_co, d_wg_hh, d_bg_hh, d_w_fac, d_msg_enc, d_msg_lag, d_wg_msg};
}

}  // namespace dsid
