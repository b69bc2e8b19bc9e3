// Block-diagonal products for the LFADS scan's groups (lfads_scan.cpp): G independent copies of a network
// side by side on the feature axis (a multi-area model's areas), each with its own weights w[g].
#pragma once

#include <torch/extension.h>

#include "gru_kernels.h"

namespace dsid {

// Group g's columns of rows laid out [group 0 | group 1 | ...], `width` columns per group (absent stays absent).
template <typename T>
Rows<T> group_of(Rows<T> r, int64_t g, int64_t width) {
  if (r.p) r.p += g * width;
  return r;
}

// out[:, g] = in[:, g] w[g]^T (transpose: in has K columns per group, out R; w: (G, R, K)) or in[:, g] w[g]
// (in R per group, out K); added to out when accumulate. Strided column blocks go straight to BLAS.
inline void group_mm(at::Tensor out, const at::Tensor& in, const at::Tensor& w, bool transpose, bool accumulate) {
  const int64_t G = w.size(0), R = w.size(1), K = w.size(2);
  const int64_t n_in = transpose ? K : R, n_out = transpose ? R : K;
  for (int64_t g = 0; g < G; ++g) {
    at::Tensor o = G == 1 ? out : out.narrow(1, g * n_out, n_out);
    const at::Tensor i = G == 1 ? in : in.narrow(1, g * n_in, n_in);
    const at::Tensor wg = transpose ? w[g].t() : w[g];
    if (accumulate)
      o.addmm_(i, wg);
    else
      at::mm_out(o, i, wg);
  }
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

}  // namespace dsid
