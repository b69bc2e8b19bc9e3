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

// Rows of a matrix: row b starts at p + (b / repeat) * stride (null p: absent). repeat > 1 shares a row
// among consecutive batch entries (e.g. one trial's encoding read by all of its posterior samples).
template <typename T>
struct Rows {
  T* p = nullptr;
  int64_t stride = 0;
  int64_t repeat = 1;
  T* at(int64_t b) const { return p + (repeat == 1 ? b : b / repeat) * stride; }
  explicit operator bool() const { return p != nullptr; }
};

// One GRU update for rows of a batch. The input pre-activation is gi (+ gi2, + bias_i when given, e.g.
// a precomputed projection plus a per-bin product), the recurrent one gh + bias_h. gates (4H per row)
// are kept for the backward; out2, when given, receives a second copy of h' (it may be h itself).
template <typename T>
struct GruForward {
  Rows<T> gi, gi2, gh;
  const T* bias_i;
  const T* bias_h;
  Rows<T> h, gates, out, out2;
  T clip;
};

template <typename T, bool kGi2, bool kBi>
void gru_forward_rows(int64_t b0, int64_t b1, int64_t H, const GruForward<T>& a) {
  const T bound = a.clip > 0 ? a.clip : std::numeric_limits<T>::infinity();
  const T* bh = a.bias_h;
  const T* bi = kBi ? a.bias_i : bh;
  for (int64_t b = b0; b < b1; ++b) {
    const T* gib = a.gi.at(b);
    const T* gi2b = kGi2 ? a.gi2.at(b) : gib;
    const T* ghb = a.gh.at(b);
    const T* hb = a.h.at(b);
    T* gb = a.gates.at(b);
    T* ob = a.out.at(b);
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      T xr = (kGi2 ? gib[j] + gi2b[j] : gib[j]) + (kBi ? bi[j] : T(0));
      T xz = (kGi2 ? gib[H + j] + gi2b[H + j] : gib[H + j]) + (kBi ? bi[H + j] : T(0));
      T xn = (kGi2 ? gib[2 * H + j] + gi2b[2 * H + j] : gib[2 * H + j]) + (kBi ? bi[2 * H + j] : T(0));
      T r = sigmoid(xr + ghb[j] + bh[j]);
      T z = sigmoid(xz + ghb[H + j] + bh[H + j]);
      T hn = ghb[2 * H + j] + bh[2 * H + j];
      T n = tanh_(xn + r * hn);
      T v = n + z * (hb[j] - n);
      v = v < -bound ? -bound : (v > bound ? bound : v);
      gb[j] = r;
      gb[H + j] = z;
      gb[2 * H + j] = n;
      gb[3 * H + j] = hn;
      ob[j] = v;
    }
    if (a.out2) std::copy(ob, ob + H, a.out2.at(b));
  }
}

// The gradient of one update. dh (in place) holds the gradient of h' from the next bin; dh_b and
// dh_c * mask (each optional) are added to it. No gradient flows through an entry clipped to +-clip
// (|h'| == clip). Writes d(gi) (3H per row), d(gh) in full (dgh) and/or its n-part only (dgh_n; its
// r and z parts equal d(gi)'s), and leaves dh * z in dh: the part of d(h) that does not pass through W_hh.
// With bias_acc (4H per thread, see gru_backward) it also adds up the biases' gradients: d(gi) over
// the rows into the first 3H, d(gh)'s n-part into the last H.
template <typename T>
struct GruBackward {
  Rows<T> dh, dh_b, dh_c, mask, h_new, h_prev, gates, dgi, dgh, dgh_n;
  T clip;
  T* bias_acc = nullptr;
};

template <typename T>
void gru_backward_rows(int64_t b0, int64_t b1, int64_t H, const GruBackward<T>& a) {
  const T bound = a.clip > 0 ? a.clip : std::numeric_limits<T>::infinity();
  for (int64_t b = b0; b < b1; ++b) {
    T* dh = a.dh.at(b);
    if (a.dh_b) {
      const T* x = a.dh_b.at(b);
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) dh[j] += x[j];
    }
    if (a.dh_c && a.mask) {
      const T* x = a.dh_c.at(b);
      const T* m = a.mask.at(b);
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) dh[j] += x[j] * m[j];
    } else if (a.dh_c) {
      const T* x = a.dh_c.at(b);
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) dh[j] += x[j];
    }
    const T* gb = a.gates.at(b);
    const T* hn_row = a.h_new.at(b);
    const T* hp_row = a.h_prev.at(b);
    T* dib = a.dgi.at(b);
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      T d = std::abs(hn_row[j]) < bound ? dh[j] : T(0);
      T r = gb[j], z = gb[H + j], n = gb[2 * H + j], hn = gb[3 * H + j];
      T dpre_n = d * (T(1) - z) * (T(1) - n * n);
      T dpre_z = d * (hp_row[j] - n) * z * (T(1) - z);
      dib[j] = dpre_n * hn * r * (T(1) - r);
      dib[H + j] = dpre_z;
      dib[2 * H + j] = dpre_n;
      dh[j] = d * z;
    }
    if (a.dgh) {
      T* dhb = a.dgh.at(b);
      std::copy(dib, dib + 2 * H, dhb);
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) dhb[2 * H + j] = dib[2 * H + j] * gb[j];
    }
    if (a.dgh_n) {
      T* dn = a.dgh_n.at(b);
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) dn[j] = dib[2 * H + j] * gb[j];
    }
    if (a.bias_acc) {
      T* acc = a.bias_acc;
#pragma omp simd
      for (int64_t j = 0; j < 3 * H; ++j) acc[j] += dib[j];
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) acc[3 * H + j] += dib[2 * H + j] * gb[j];
    }
  }
}

// The two kernels above with the rows split across ATen's threads (a few dozen rows each).
template <typename T>
void gru_forward(int64_t rows, int64_t H, const GruForward<T>& a) {
  at::parallel_for(0, rows, 32, [&](int64_t b0, int64_t b1) {
    if (a.gi2 && a.bias_i)
      gru_forward_rows<T, true, true>(b0, b1, H, a);
    else if (a.gi2)
      gru_forward_rows<T, true, false>(b0, b1, H, a);
    else if (a.bias_i)
      gru_forward_rows<T, false, true>(b0, b1, H, a);
    else
      gru_forward_rows<T, false, false>(b0, b1, H, a);
  });
}

// bias_acc, when given, holds 4H accumulators per ATen thread (at::get_num_threads() rows of 4H): each
// thread adds its rows' bias gradients into its own.
template <typename T>
void gru_backward(int64_t rows, int64_t H, const GruBackward<T>& a) {
  at::parallel_for(0, rows, 32, [&](int64_t b0, int64_t b1) {
    GruBackward<T> mine = a;
    if (a.bias_acc) mine.bias_acc = a.bias_acc + at::get_thread_num() * 4 * H;
    gru_backward_rows<T>(b0, b1, H, mine);
  });
}

// Rows of a tensor's first bin/group slice (contiguous rows of `width`), or absent for an empty tensor.
template <typename T>
Rows<T> rows_of(const at::Tensor& x, int64_t width) {
  return {x.numel() ? x.data_ptr<T>() : nullptr, width};
}

}  // namespace dsid
