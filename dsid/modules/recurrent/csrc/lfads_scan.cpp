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

#include <tuple>
#include <vector>

#include "groups.h"
#include "gru_kernels.h"
#include "lag_mixing.h"

namespace dsid {

namespace {
template <typename T>
T* ptr(const at::Tensor& x) {  // null for an empty tensor
  return x.numel() ? x.data_ptr<T>() : nullptr;
}
template <typename T>
void multiply(T* out, const T* a, const T* b, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
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
  auto c0 = at::zeros({B, GHc}, o);
  if (ext_proj.stride(2) != 1) ext_proj = ext_proj.contiguous();
  for (at::Tensor* x : {&ci_proj, &g0, &f0, &wc_f, &wc_hh, &bc_hh, &w_head, &b_head, &wg_co, &wg_hh, &bg_hh, &w_fac,
                        &msg_enc, &msg_lag, &wg_msg, &eps, &mask_c, &mask_g})
    *x = x->contiguous();
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
    using T_ = scalar_t;
    using Row = Rows<T_>;
    const T_ *pwc_f = ptr<T_>(wc_f), *pwc_hh = ptr<T_>(wc_hh), *pw_head = ptr<T_>(w_head), *pb_head = ptr<T_>(b_head);
    const T_ *pwg_co = ptr<T_>(wg_co), *pwg_hh = ptr<T_>(wg_hh), *pw_fac = ptr<T_>(w_fac), *penc = ptr<T_>(msg_enc);
    const T_ *pwg_msg = ptr<T_>(wg_msg), *peps = ptr<T_>(eps), *pmask_c = ptr<T_>(mask_c), *pmask_g = ptr<T_>(mask_g);
    T_ *pF = ptr<T_>(Fs), *pG = ptr<T_>(Gs), *pC = ptr<T_>(Cs), *phead = ptr<T_>(head), *pco = ptr<T_>(co);
    T_ *pgic = ptr<T_>(gic), *pghc = ptr<T_>(ghc), *pcd = ptr<T_>(cd), *pgig = ptr<T_>(gig), *pghg = ptr<T_>(ghg);
    T_ *pgd = ptr<T_>(gd), *pPh = ptr<T_>(Ph), *pMs = ptr<T_>(Ms);
    const T_ *pf0 = ptr<T_>(f0), *pg0 = ptr<T_>(g0), *pc0 = ptr<T_>(c0), *plag = ptr<T_>(msg_lag);
    const int64_t S = msg_from_state ? GH : G * F;
    for (int64_t t = 0; t < T; ++t) {
      const T_* f_prev = t ? pF + (t - 1) * B * G * F : pf0;
      const T_* g_prev = t ? pG + (t - 1) * B * GH : pg0;
      T_* g_t = pG + t * B * GH;
      T_* f_t = pF + t * B * G * F;
      Row gi2{};
      if (t < Tc) {
        const T_* c_prev = t ? pC + (t - 1) * B * GHc : pc0;
        T_* c_t = pC + t * B * GHc;
        group_gemm_t<T_>(B, G, 3 * Hc, F, f_prev, pwc_f, false, pgic);
        group_gemm_t<T_>(B, G, 3 * Hc, Hc, c_prev, pwc_hh, false, pghc);
        const Row ci_t{ptr<T_>(ci_proj) + t * ci_proj.size(1) * 3 * GHc, 3 * GHc, ci_repeat};
        gru_forward_groups<T_>(B, G, Hc,
                               {ci_t, Row{pgic, 3 * GHc}, Row{pghc, 3 * GHc}, nullptr, ptr<T_>(bc_hh),
                                Row{const_cast<T_*>(c_prev), GHc},
                                Row{ptr<T_>(gates_c) + (keep ? t : 0) * B * 4 * GHc, 4 * GHc}, Row{c_t, GHc}, Row{},
                                static_cast<T_>(clip_c)});
        const T_* c_in = c_t;
        if (pmask_c) {
          multiply(pcd, c_t, pmask_c + t * B * GHc, B * GHc);
          c_in = pcd;
        }
        T_* h_t = phead + t * B * G * 2 * C;
        T_* co_t = pco + t * B * G * C;
        group_gemm_t<T_>(B, G, 2 * C, Hc, c_in, pw_head, false, h_t);
        for (int64_t b = 0; b < B; ++b)  // bias, then co = m + exp(lv / 2) eps per group
          for (int64_t g = 0; g < G; ++g) {
            T_* h = h_t + (b * G + g) * 2 * C;
            const T_* hb = pb_head + g * 2 * C;
            T_* o = co_t + (b * G + g) * C;
            const T_* e = peps ? peps + ((t * B + b) * G + g) * C : nullptr;
            for (int64_t j = 0; j < 2 * C; ++j) h[j] += hb[j];
            for (int64_t j = 0; j < C; ++j) o[j] = e ? h[j] + exp_(h[C + j] * T_(0.5)) * e[j] : h[j];
          }
        group_gemm_t<T_>(B, G, 3 * Hg, C, co_t, pwg_co, false, pgig);
        gi2 = Row{pgig, 3 * GH};
      }
      if (P) {
        T_* m_t = pMs + t * B * P;
        mix_lags<T_>(m_t, pPh, plag, t, L, B, P);
        gemm<T_>(false, true, B, 3 * GH, P, m_t, P, pwg_msg, P, static_cast<bool>(gi2), pgig, 3 * GH);
        gi2 = Row{pgig, 3 * GH};
      }
      group_gemm_t<T_>(B, G, 3 * Hg, Hg, g_prev, pwg_hh, false, pghg);
      const Row ext_t{ptr<T_>(ext_proj) + t * ext_proj.stride(0), ext_stride};
      gru_forward_groups<T_>(B, G, Hg,
                             {ext_t, gi2, Row{pghg, 3 * GH}, nullptr, ptr<T_>(bg_hh), Row{const_cast<T_*>(g_prev), GH},
                              Row{ptr<T_>(gates_g) + (keep ? t : 0) * B * 4 * GH, 4 * GH}, Row{g_t, GH}, Row{},
                              static_cast<T_>(clip_g)});
      const T_* g_in = g_t;
      if (pmask_g) {
        multiply(pgd, g_t, pmask_g + t * B * GH, B * GH);
        g_in = pgd;
      }
      group_gemm_t<T_>(B, G, F, Hg, g_in, pw_fac, false, f_t);
      if (P) gemm<T_>(false, true, B, P, S, msg_from_state ? g_t : f_t, S, penc, S, false, pPh + (t + 1) * B * P, P);
    }
    if (P) mix_lags<T_>(pMs + T * B * P, pPh, plag, T, L, B, P);
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
  for (at::Tensor* x : {&dF, &dG, &dhead, &dco_out, &dMs, &g0, &f0, &wc_f, &wc_hh, &w_head, &wg_co, &wg_hh, &w_fac,
                        &msg_enc, &msg_lag, &wg_msg, &eps, &mask_c, &mask_g})
    *x = x->contiguous();
  const int64_t G = wg_hh.size(0), T = Gs.size(0), B = Gs.size(1), GH = Gs.size(2), Hg = GH / G, GF = Fs.size(2);
  const int64_t F = GF / G;
  const int64_t Tc = Cs.size(0), GHc = Cs.size(2), Hc = GHc / G, C = co.size(2) / G;
  const int64_t P = Ms.size(2), L = P ? msg_lag.size(0) : 0;
  auto o = Gs.options();
  // d(gh) of one bin at a time (the recurrent product's input); over all bins only its n-part is kept
  // (its r and z parts equal d(gi)'s), for W_hh's and b_hh's gradients at the end
  auto DF = at::empty({T, B, GF}, o), dgi_g = at::empty({T, B, 3 * GH}, o), dgh_g = at::empty({B, 3 * GH}, o);
  auto dgi_c = at::empty({Tc, B, 3 * GHc}, o), dgh_c = at::empty({Tc ? B : 0, 3 * GHc}, o);
  auto dghn_g = at::empty({T, B, GH}, o), dghn_c = at::empty({Tc, B, GHc}, o);
  auto DH = at::empty({Tc, B, G * 2 * C}, o);
  auto dg = at::zeros({B, GH}, o), dc = at::zeros({B, GHc}, o), df = at::zeros({B, GF}, o);
  auto dgd = at::empty({B, GH}, o), dcd = at::empty({B, GHc}, o), dco = at::empty({B, G * C}, o);
  auto c0 = at::zeros({B, GHc}, o);
  // message feedback: gradients of the projections (dPh) and of the messages (DM), and of one bin's state
  auto dPh = at::zeros({P ? T + 1 : 0, B, P}, o), DM = at::empty({P ? T + 1 : 0, B, P}, o);
  auto dgs = at::empty({P && msg_from_state ? B : 0, GH}, o);
  AT_DISPATCH_FLOATING_TYPES(Gs.scalar_type(), "lfads_scan_backward", [&] {
    using T_ = scalar_t;
    using Row = Rows<T_>;
    const T_ *pwc_f = ptr<T_>(wc_f), *pwc_hh = ptr<T_>(wc_hh), *pw_head = ptr<T_>(w_head), *pwg_co = ptr<T_>(wg_co);
    const T_ *pwg_hh = ptr<T_>(wg_hh), *pw_fac = ptr<T_>(w_fac), *penc = ptr<T_>(msg_enc), *pwg_msg = ptr<T_>(wg_msg);
    const T_ *peps = ptr<T_>(eps), *pmask_c = ptr<T_>(mask_c), *pmask_g = ptr<T_>(mask_g), *plag = ptr<T_>(msg_lag);
    const T_ *pF = ptr<T_>(Fs), *pG = ptr<T_>(Gs), *pC = ptr<T_>(Cs), *phead = ptr<T_>(head), *pco = ptr<T_>(co);
    const T_ *pdF = ptr<T_>(dF), *pdG = ptr<T_>(dG), *pdhead = ptr<T_>(dhead), *pdco_out = ptr<T_>(dco_out);
    const T_ *pdMs = ptr<T_>(dMs), *pg0 = ptr<T_>(g0), *pc0 = ptr<T_>(c0);
    T_ *pDF = ptr<T_>(DF), *pdgi_g = ptr<T_>(dgi_g), *pdgh_g = ptr<T_>(dgh_g), *pdgi_c = ptr<T_>(dgi_c);
    T_ *pdgh_c = ptr<T_>(dgh_c), *pDH = ptr<T_>(DH), *pdg = ptr<T_>(dg), *pdc = ptr<T_>(dc), *pdf = ptr<T_>(df);
    T_ *pdghn_g = ptr<T_>(dghn_g), *pdghn_c = ptr<T_>(dghn_c);
    T_ *pdgd = ptr<T_>(dgd), *pdcd = ptr<T_>(dcd), *pdco = ptr<T_>(dco), *pdPh = ptr<T_>(dPh), *pDM = ptr<T_>(DM);
    T_* pdgs = ptr<T_>(dgs);
    const int64_t S = msg_from_state ? GH : GF;
    if (P) {  // the message after the last bin reaches the model only through the Ms output
      std::copy(pdMs + T * B * P, pdMs + (T + 1) * B * P, pDM + T * B * P);
      push_lags<T_>(pdPh, pDM + T * B * P, plag, T, L, B, P);
    }
    for (int64_t t = T - 1; t >= 0; --t) {
      T_* df_t = pDF + t * B * GF;
      const T_* dG_t = pdG + t * B * GH;
      for (int64_t i = 0; i < B * GF; ++i) df_t[i] = pdF[t * B * GF + i] + pdf[i];
      if (P && msg_from_state) {  // the state's gradient from the messages it feeds
        std::copy(dG_t, dG_t + B * GH, pdgs);
        gemm<T_>(false, false, B, S, P, pdPh + (t + 1) * B * P, P, penc, S, true, pdgs, S);
        dG_t = pdgs;
      } else if (P) {
        gemm<T_>(false, false, B, S, P, pdPh + (t + 1) * B * P, P, penc, S, true, df_t, S);
      }
      group_gemm_n<T_>(B, G, F, Hg, df_t, pw_fac, false, pdgd);
      const T_* g_prev = t ? pG + (t - 1) * B * GH : pg0;
      gru_backward_groups<T_>(B, G, Hg,
                              {Row{pdg, GH}, Row{const_cast<T_*>(dG_t), GH}, Row{pdgd, GH},
                               Row{pmask_g ? const_cast<T_*>(pmask_g) + t * B * GH : nullptr, GH},
                               Row{const_cast<T_*>(pG) + t * B * GH, GH}, Row{const_cast<T_*>(g_prev), GH},
                               Row{ptr<T_>(gates_g) + t * B * 4 * GH, 4 * GH}, Row{pdgi_g + t * B * 3 * GH, 3 * GH},
                               Row{pdgh_g, 3 * GH}, Row{pdghn_g + t * B * GH, GH}, static_cast<T_>(clip_g)});
      group_gemm_n<T_>(B, G, 3 * Hg, Hg, pdgh_g, pwg_hh, true, pdg);
      if (P) {
        T_* dm = pDM + t * B * P;
        std::copy(pdMs + t * B * P, pdMs + (t + 1) * B * P, dm);
        gemm<T_>(false, false, B, P, 3 * GH, pdgi_g + t * B * 3 * GH, 3 * GH, pwg_msg, P, true, dm, P);
        push_lags<T_>(pdPh, dm, plag, t, L, B, P);
      }
      if (t >= Tc) {
        std::fill(pdf, pdf + B * GF, T_(0));
        continue;
      }
      group_gemm_n<T_>(B, G, 3 * Hg, C, pdgi_g + t * B * 3 * GH, pwg_co, false, pdco);
      for (int64_t i = 0; i < B * G * C; ++i) pdco[i] += pdco_out[t * B * G * C + i];
      for (int64_t bg = 0; bg < B * G; ++bg) {  // [dm | dlv] per trial and group; co = m + exp(lv / 2) eps
        T_* d = pDH + t * B * G * 2 * C + bg * 2 * C;
        const T_* dh = pdhead + t * B * G * 2 * C + bg * 2 * C;
        const T_* h = phead + t * B * G * 2 * C + bg * 2 * C;
        const T_* o = pco + t * B * G * C + bg * C;
        const T_* dc_ = pdco + bg * C;
        for (int64_t j = 0; j < C; ++j) {
          d[j] = dc_[j] + dh[j];
          d[C + j] = dh[C + j] + (peps ? dc_[j] * (o[j] - h[j]) * T_(0.5) : T_(0));
        }
      }
      group_gemm_n<T_>(B, G, 2 * C, Hc, pDH + t * B * G * 2 * C, pw_head, false, pdcd);
      const T_* c_prev = t ? pC + (t - 1) * B * GHc : pc0;
      gru_backward_groups<T_>(B, G, Hc,
                              {Row{pdc, GHc}, Row{}, Row{pdcd, GHc},
                               Row{pmask_c ? const_cast<T_*>(pmask_c) + t * B * GHc : nullptr, GHc},
                               Row{const_cast<T_*>(pC) + t * B * GHc, GHc}, Row{const_cast<T_*>(c_prev), GHc},
                               Row{ptr<T_>(gates_c) + t * B * 4 * GHc, 4 * GHc}, Row{pdgi_c + t * B * 3 * GHc, 3 * GHc},
                               Row{pdgh_c, 3 * GHc}, Row{pdghn_c + t * B * GHc, GHc}, static_cast<T_>(clip_c)});
      group_gemm_n<T_>(B, G, 3 * Hc, Hc, pdgh_c, pwc_hh, true, pdc);
      group_gemm_n<T_>(B, G, 3 * Hc, F, pdgi_c + t * B * 3 * GHc, pwc_f, false, pdf);
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
  at::Tensor d_w_fac, d_wg_hh, d_bg_hh, d_wg_co, d_w_head, d_b_head, d_wc_hh, d_bc_hh, d_wc_f;
  {  // (scoped: the masked states are freed before the next product)
    auto g_in = mask_g.numel() ? Gs * mask_g : Gs;
    d_w_fac = group_weight_grad(DF.view({T * B, GF}), g_in.reshape({T * B, GH}), G);
  }
  std::tie(d_wg_hh, d_bg_hh) = recurrent_grads(dgi_g, dghn_g, g0, Gs, G);
  if (Tc) {
    d_wg_co = group_weight_grad(dgi_g.narrow(0, 0, Tc).reshape({Tc * B, 3 * GH}), co.view({Tc * B, G * C}), G);
    auto flat_h = DH.view({Tc * B, G * 2 * C});
    {
      auto c_in = mask_c.numel() ? Cs * mask_c : Cs;
      d_w_head = group_weight_grad(flat_h, c_in.reshape({Tc * B, GHc}), G);
    }
    d_b_head = flat_h.sum(0);
    std::tie(d_wc_hh, d_bc_hh) = recurrent_grads(dgi_c, dghn_c, c0, Cs, G);
    d_wc_f = shifted_weight_grad(dgi_c, f0, Fs, G);
  }
  return {dgi_c, dgi_g, dg,       df,       d_wc_f,    d_wc_hh,   d_bc_hh,  d_w_head,
          d_b_head, d_wg_co, d_wg_hh, d_bg_hh, d_w_fac, d_msg_enc, d_msg_lag, d_wg_msg};
}

}  // namespace dsid
