// Dropout masks from a counter-based hash: entry i keeps (value 1 / (1 - p)) when a uniform number made
// from hash(seed, i) is below 1 - p, else 0. Every entry is independent of the others and of the order in
// which they are made, so the loop is vectorised and split across threads; the seed comes from PyTorch's
// generator, so masks follow torch.manual_seed.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <cstdint>
#include <vector>

namespace dsid {

namespace {
__attribute__((always_inline)) inline uint32_t fmix32(uint32_t x) {  // MurmurHash3's finaliser: every input bit flips each output bit ~1/2
  x ^= x >> 16;
  x *= 0x85ebca6bu;
  x ^= x >> 13;
  x *= 0xc2b2ae35u;
  x ^= x >> 16;
  return x;
}

template <typename T>
void fill_mask(T* out, int64_t begin, int64_t end, uint32_t s_lo, uint32_t s_hi, uint32_t threshold, T keep) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    uint32_t h = fmix32(static_cast<uint32_t>(i) ^ s_lo) ^ s_hi;
    h = fmix32(h + static_cast<uint32_t>(i >> 32));
    out[i] = (h >> 8) < threshold ? keep : T(0);
  }
}
}  // namespace

at::Tensor dropout_mask(std::vector<int64_t> shape, double p, int64_t seed, at::Tensor like) {
  auto mask = at::empty(shape, like.options());
  const int64_t n = mask.numel();
  const uint32_t s_lo = fmix32(static_cast<uint32_t>(seed)), s_hi = fmix32(static_cast<uint32_t>(seed >> 32) ^ s_lo);
  const uint32_t threshold = static_cast<uint32_t>((1.0 - p) * 16777216.0);  // compared with 24 random bits
  AT_DISPATCH_FLOATING_TYPES(mask.scalar_type(), "dropout_mask", [&] {
    const scalar_t keep = static_cast<scalar_t>(1.0 / (1.0 - p));
    scalar_t* out = mask.data_ptr<scalar_t>();
    at::parallel_for(0, n, 1 << 16, [&](int64_t begin, int64_t end) {
      fill_mask<scalar_t>(out, begin, end, s_lo, s_hi, threshold, keep);
    });
  });
  return mask;
}

}  // namespace dsid
