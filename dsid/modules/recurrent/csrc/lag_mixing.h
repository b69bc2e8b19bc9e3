// Lag mixing of the LFADS scan's message feedback (lfads_scan.cpp).
//
// Ph holds the projections of the fed-back signal, (T + 1, B, P) contiguous: row 0 the initial signal's,
// row tau + 1 that of bin tau. The message entering bin t mixes the projections of bins t - 1 - l,
// l = 0 .. L - 1, weighted per column by lag[l, p]; bins before the first read the initial signal:
//   m_t[b, p] = sum_l lag[l, p] Ph[max(t - l, 0)][b, p].
#pragma once

#include <algorithm>
#include <cstdint>

namespace dsid {

// m = the message for bin t (B * P values).
template <typename T>
void mix_lags(T* m, const T* Ph, const T* lag, int64_t t, int64_t L, int64_t B, int64_t P) {
  std::fill(m, m + B * P, T(0));
  for (int64_t l = 0; l < L; ++l) {
    const T* src = Ph + std::max<int64_t>(t - l, 0) * B * P;
    const T* w = lag + l * P;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t p = 0; p < P; ++p) m[b * P + p] += w[p] * src[b * P + p];
  }
}

// The backward of mix_lags: add dm's share to the gradients of the projections it read.
template <typename T>
void push_lags(T* dPh, const T* dm, const T* lag, int64_t t, int64_t L, int64_t B, int64_t P) {
  for (int64_t l = 0; l < L; ++l) {
    T* dst = dPh + std::max<int64_t>(t - l, 0) * B * P;
    const T* w = lag + l * P;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t p = 0; p < P; ++p) dst[b * P + p] += w[p] * dm[b * P + p];
  }
}

}  // namespace dsid
