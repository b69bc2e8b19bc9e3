// Element-wise parts of a clipped GRU update and its gradient, for rows of a batch.
//
// A GRU update (gates r, z, n as in torch.nn.GRUCell) from the input pre-activations gi = x W_ih^T + b_ih
// and the recurrent ones gh = h W_hh^T + b_hh (rows of 3H: r | z | n):
//   r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r * gh_n), h' = n + z (h - n),
// then h' clipped to [-clip, clip] when clip > 0. The forward keeps r | z | n | gh_n (4H per row) for
// the backward.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace dsid {

// exp, sigmoid and tanh: the standard library's in double precision; in single precision a branch-free
// exp (range reduction to [-ln2/2, ln2/2] and Cephes' degree-6 polynomial, relative error < 2e-7) that
// the compiler vectorises, where calls to expf/tanhf would run one element at a time.
inline double exp_(double x) { return std::exp(x); }
__attribute__((always_inline)) inline float exp_(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);  // (ternaries: std::min/max block vectorisation)
  // round to nearest without a library call: adding and removing 1.5 * 2^23 drops the fraction
  float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - k * 0.693359375f + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}
template <typename T>
__attribute__((always_inline)) inline T sigmoid(T x) { return T(1) / (T(1) + exp_(-x)); }
inline double tanh_(double x) { return std::tanh(x); }
__attribute__((always_inline)) inline float tanh_(float x) {
  float t = exp_(-2.0f * std::abs(x));
  float y = (1.0f - t) / (1.0f + t);
  return std::copysign(y, x);
}

// rows x H: gi, gh (rows x 3H), h (rows x H) -> gates (rows x 4H), h_out (rows x H)
template <typename T>
void gru_forward_rows(int64_t rows, int64_t H, const T* gi, const T* gh, const T* h, T* gates, T* h_out,
                      T clip) {
  const T bound = clip > 0 ? clip : std::numeric_limits<T>::infinity();
  for (int64_t b = 0; b < rows; ++b) {
    const T* gib = gi + b * 3 * H;
    const T* ghb = gh + b * 3 * H;
    const T* hb = h + b * H;
    T* gb = gates + b * 4 * H;
    T* ob = h_out + b * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      T r = sigmoid(gib[j] + ghb[j]);
      T z = sigmoid(gib[H + j] + ghb[H + j]);
      T hn = ghb[2 * H + j];
      T n = tanh_(gib[2 * H + j] + r * hn);
      T v = n + z * (hb[j] - n);
      v = v < -bound ? -bound : (v > bound ? bound : v);
      gb[j] = r;
      gb[H + j] = z;
      gb[2 * H + j] = n;
      gb[3 * H + j] = hn;
      ob[j] = v;
    }
  }
}

// The gradient of one update. dh = (dh_a + dh_b [+ dh_c * mask]) is the gradient of h' (any of
// dh_b, dh_c, mask may be null); no gradient flows through an entry clipped to +-clip (|h'| == clip).
// Writes d(gi) and d(gh) (rows x 3H) and dh_direct = dh * z, the part of d(h) that does not pass
// through W_hh (may alias dh_a).
template <typename T>
void gru_backward_rows(int64_t rows, int64_t H, const T* dh_a, const T* dh_b, const T* dh_c, const T* mask,
                       const T* h_new, const T* h_prev, const T* gates, T* dgi, T* dgh, T* dh_direct,
                       T clip) {
  const T bound = clip > 0 ? clip : std::numeric_limits<T>::infinity();
  for (int64_t b = 0; b < rows; ++b) {
    const int64_t o = b * H;
    T* dh = dh_direct + o;  // the summed incoming gradient, then overwritten with dh * z
    if (dh != dh_a + o) std::copy(dh_a + o, dh_a + o + H, dh);
    if (dh_b) {
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) dh[j] += dh_b[o + j];
    }
    if (dh_c && mask) {
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) dh[j] += dh_c[o + j] * mask[o + j];
    } else if (dh_c) {
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) dh[j] += dh_c[o + j];
    }
    const T* gb = gates + b * 4 * H;
    const T* hn_row = h_new + o;
    const T* hp_row = h_prev + o;
    T* dib = dgi + b * 3 * H;
    T* dhb = dgh + b * 3 * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      T d = std::abs(hn_row[j]) < bound ? dh[j] : T(0);
      T r = gb[j], z = gb[H + j], n = gb[2 * H + j], hn = gb[3 * H + j];
      T dpre_n = d * (T(1) - z) * (T(1) - n * n);
      T dpre_z = d * (hp_row[j] - n) * z * (T(1) - z);
      T dpre_r = dpre_n * hn * r * (T(1) - r);
      dib[j] = dpre_r;
      dib[H + j] = dpre_z;
      dib[2 * H + j] = dpre_n;
      dhb[j] = dpre_r;
      dhb[H + j] = dpre_z;
      dhb[2 * H + j] = dpre_n * r;
      dh[j] = d * z;
    }
  }
}

// The two kernels above with the rows split across ATen's threads (a few dozen rows each).
template <typename T>
void gru_forward(int64_t rows, int64_t H, const T* gi, const T* gh, const T* h, T* gates, T* h_out, T clip) {
  at::parallel_for(0, rows, 32, [&](int64_t r, int64_t end) {
    gru_forward_rows<T>(end - r, H, gi + r * 3 * H, gh + r * 3 * H, h + r * H, gates + r * 4 * H, h_out + r * H,
                        clip);
  });
}

template <typename T>
void gru_backward(int64_t rows, int64_t H, const T* dh_a, const T* dh_b, const T* dh_c, const T* mask,
                  const T* h_new, const T* h_prev, const T* gates, T* dgi, T* dgh, T* dh_direct, T clip) {
  auto at_row = [](const T* p, int64_t offset) { return p ? p + offset : nullptr; };
  at::parallel_for(0, rows, 32, [&](int64_t r, int64_t end) {
    const int64_t o = r * H;
    gru_backward_rows<T>(end - r, H, dh_a + o, at_row(dh_b, o), at_row(dh_c, o), at_row(mask, o), h_new + o,
                         h_prev + o, gates + 4 * o, dgi + 3 * o, dgh + 3 * o, dh_direct + o, clip);
  });
}

}  // namespace dsid
