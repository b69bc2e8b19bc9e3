// Block-diagonal products for the LFADS scan's groups (lfads_scan.cpp): G independent copies of a network
// side by side on the feature axis (a multi-area model's areas), each with its own weights w[g].
#pragma once

#include <torch/extension.h>

#include <utility>

#include "blas.h"
#include "gru_kernels.h"

namespace dsid {

// Group g's columns of rows laid out [group 0 | group 1 | ...], `width` columns per group (absent stays absent).
template <typename T>
Rows<T> group_of(Rows<T> r, int64_t g, int64_t width) {
  if (r.p) r.p += g * width;
  return r;
}

// One GRU update of every group (gru_kernels.h): `a` holds the rows of all groups (gi, gi2, gh and the biases
// 3H per group, h, out and out2 H, gates 4H); each group's columns are updated in turn.
template <typename T>
void gru_forward_groups(int64_t rows, int64_t G, int64_t H, const GruForward<T>& a) {
  for (int64_t g = 0; g < G; ++g) {
    GruForward<T> ag{group_of(a.gi, g, 3 * H),  group_of(a.gi2, g, 3 * H),   group_of(a.gh, g, 3 * H),
                     a.bias_i ? a.bias_i + g * 3 * H : nullptr, a.bias_h + g * 3 * H, group_of(a.h, g, H),
                     group_of(a.gates, g, 4 * H), group_of(a.out, g, H), group_of(a.out2, g, H), a.clip};
    gru_forward<T>(rows, H, ag);
  }
}

// The gradient of one GRU update of every group (rows of all groups as in gru_forward_groups; dgi, dgh 3H).
template <typename T>
void gru_backward_groups(int64_t rows, int64_t G, int64_t H, const GruBackward<T>& a) {
  for (int64_t g = 0; g < G; ++g) {
    GruBackward<T> ag{group_of(a.dh, g, H),    group_of(a.dh_b, g, H),      group_of(a.dh_c, g, H),
                      group_of(a.mask, g, H),  group_of(a.h_new, g, H),     group_of(a.h_prev, g, H),
                      group_of(a.gates, g, 4 * H), group_of(a.dgi, g, 3 * H), group_of(a.dgh, g, 3 * H),
                      group_of(a.dgh_n, g, H), a.clip};
    gru_backward<T>(rows, H, ag);
  }
}

// out (rows x G * R) = [in[:, g] w[g]^T]_g with in (rows x G * K), w (G, R, K): a forward product.
template <typename T>
void group_gemm_t(int64_t rows, int64_t G, int64_t R, int64_t K, const T* in, const T* w, bool accumulate, T* out) {
  for (int64_t g = 0; g < G; ++g)
    gemm<T>(false, true, rows, R, K, in + g * K, G * K, w + g * R * K, K, accumulate, out + g * R, G * R);
}

// out (rows x G * K) = [in[:, g] w[g]]_g with in (rows x G * R), w (G, R, K): a backward product.
template <typename T>
void group_gemm_n(int64_t rows, int64_t G, int64_t R, int64_t K, const T* in, const T* w, bool accumulate, T* out) {
  for (int64_t g = 0; g < G; ++g)
    gemm<T>(false, false, rows, K, R, in + g * R, G * R, w + g * R * K, K, accumulate, out + g * K, G * K);
}

// Every group's weight gradient: d[g] = a[:, g]^T b[:, g] over all rows; a (N, G * R), b (N, G * K) -> (G, R, K).
inline at::Tensor group_weight_grad(const at::Tensor& a, const at::Tensor& b, int64_t G) {
  const int64_t R = a.size(1) / G, K = b.size(1) / G;
  auto d = at::empty({G, R, K}, a.options());
  for (int64_t g = 0; g < G; ++g) {
    at::Tensor dg = d[g];
    at::mm_out(dg, a.narrow(1, g * R, R).t(), b.narrow(1, g * K, K));
  }
  return d;
}

// Every group's weight gradient against the inputs of the bins before: d[g] = sum_t d[t, :, g]^T x_t[:, g], with
// x_0 = first (B, G * K) and x_t = seq[t - 1] (seq: (>= T - 1, B, G * K)); d: (T, B, G * R) -> (G, R, K).
inline at::Tensor shifted_weight_grad(const at::Tensor& d, const at::Tensor& first, const at::Tensor& seq, int64_t G) {
  const int64_t T = d.size(0), B = d.size(1), R = d.size(2) / G, K = first.size(1) / G;
  auto out = at::empty({G, R, K}, d.options());
  for (int64_t g = 0; g < G; ++g) {
    at::Tensor og = out[g];
    at::mm_out(og, d[0].narrow(1, g * R, R).t(), first.narrow(1, g * K, K));
    if (T > 1)
      og.addmm_(d.narrow(0, 1, T - 1).narrow(2, g * R, R).reshape({(T - 1) * B, R}).t(),
                seq.narrow(0, 0, T - 1).narrow(2, g * K, K).reshape({(T - 1) * B, K}));
  }
  return out;
}

// W_hh's and b_hh's gradients of grouped GRUs stepped over T bins, from d(gi) (T, B, G * 3H; its r and z
// columns equal d(gh)'s) and d(gh)'s n-part (T, B, G * H), against the state before each bin (h0, then
// states[t - 1]): (G, 3H, H) and (G * 3H).
inline std::pair<at::Tensor, at::Tensor> recurrent_grads(const at::Tensor& dgi, const at::Tensor& dgh_n,
                                                         const at::Tensor& h0, const at::Tensor& states, int64_t G) {
  const int64_t H = dgh_n.size(2) / G;
  auto dw = at::empty({G, 3 * H, H}, dgi.options()), db = at::empty({G, 3 * H}, dgi.options());
  for (int64_t g = 0; g < G; ++g) {
    auto rz = dgi.narrow(2, g * 3 * H, 2 * H), n = dgh_n.narrow(2, g * H, H);
    auto h0g = h0.narrow(1, g * H, H), sg = states.narrow(2, g * H, H);
    dw[g].narrow(0, 0, 2 * H).copy_(shifted_weight_grad(rz, h0g, sg, 1)[0]);
    dw[g].narrow(0, 2 * H, H).copy_(shifted_weight_grad(n, h0g, sg, 1)[0]);
    db[g].narrow(0, 0, 2 * H).copy_(rz.sum({0, 1}));
    db[g].narrow(0, 2 * H, H).copy_(n.sum({0, 1}));
  }
  return {dw, db.view({G * 3 * H})};
}

}  // namespace dsid
