// Scan of G GRUs over T bins, forward and backward through time, with the element-wise work of each bin
// in one pass (gru_kernels.h) and the matrix products in ATen. Layout (G, T, B, .): the per-bin block
// of one group is contiguous, and the weight gradients are one batched product over all bins.
#include <torch/extension.h>

#include <vector>

#include "gru_kernels.h"

namespace dsid {

std::vector<at::Tensor> gru_scan_forward(at::Tensor gi, at::Tensor h0, at::Tensor w_hh, at::Tensor b_hh,
                                         double clip) {
  gi = gi.contiguous();
  h0 = h0.contiguous();
  const int64_t G = gi.size(0), T = gi.size(1), B = gi.size(2), H = h0.size(2);
  auto hs = at::empty({G, T, B, H}, gi.options());
  auto gates = at::empty({G, T, B, 4 * H}, gi.options());
  auto gh = at::empty({G, B, 3 * H}, gi.options());
  auto w_t = w_hh.transpose(1, 2);
  auto bias = b_hh.unsqueeze(1);
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "gru_scan_forward", [&] {
    const scalar_t c = static_cast<scalar_t>(clip);
    for (int64_t t = 0; t < T; ++t) {
      at::Tensor h = t == 0 ? h0 : hs.select(1, t - 1);
      at::baddbmm_out(gh, bias, h, w_t);
      for (int64_t g = 0; g < G; ++g) {
        const scalar_t* hp = t == 0 ? h0.data_ptr<scalar_t>() + g * B * H
                                    : hs.data_ptr<scalar_t>() + (g * T + t - 1) * B * H;
        const scalar_t* gip = gi.data_ptr<scalar_t>() + (g * T + t) * B * 3 * H;
        const scalar_t* ghp = gh.data_ptr<scalar_t>() + g * B * 3 * H;
        scalar_t* gp = gates.data_ptr<scalar_t>() + (g * T + t) * B * 4 * H;
        scalar_t* op = hs.data_ptr<scalar_t>() + (g * T + t) * B * H;
        gru_forward<scalar_t>(B, H, gip, ghp, hp, gp, op, c);
      }
    }
  });
  return {hs, gates};
}

std::vector<at::Tensor> gru_scan_backward(at::Tensor d_hs, at::Tensor h0, at::Tensor w_hh, at::Tensor hs,
                                          at::Tensor gates, double clip) {
  d_hs = d_hs.contiguous();
  h0 = h0.contiguous();
  const int64_t G = hs.size(0), T = hs.size(1), B = hs.size(2), H = hs.size(3);
  auto dgi = at::empty({G, T, B, 3 * H}, hs.options());
  auto dgh = at::empty({G, T, B, 3 * H}, hs.options());
  auto dh = at::zeros({G, B, H}, hs.options());
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "gru_scan_backward", [&] {
    const scalar_t c = static_cast<scalar_t>(clip);
    for (int64_t t = T - 1; t >= 0; --t) {
      for (int64_t g = 0; g < G; ++g) {
        const int64_t row = (g * T + t) * B;
        const scalar_t* hp = t == 0 ? h0.data_ptr<scalar_t>() + g * B * H
                                    : hs.data_ptr<scalar_t>() + (row - B) * H;
        scalar_t* dhg = dh.data_ptr<scalar_t>() + g * B * H;
        const scalar_t* dhs = d_hs.data_ptr<scalar_t>() + row * H;
        const scalar_t* hn = hs.data_ptr<scalar_t>() + row * H;
        const scalar_t* gp = gates.data_ptr<scalar_t>() + row * 4 * H;
        scalar_t* dgip = dgi.data_ptr<scalar_t>() + row * 3 * H;
        scalar_t* dghp = dgh.data_ptr<scalar_t>() + row * 3 * H;
        gru_backward<scalar_t>(B, H, dhg, dhs, nullptr, nullptr, hn, hp, gp, dgip, dghp, dhg, c);
      }
      dh.baddbmm_(dgh.select(1, t), w_hh);
    }
  });
  auto h_prev = at::cat({h0.unsqueeze(1), hs.narrow(1, 0, T - 1)}, 1).view({G, T * B, H});
  auto flat = dgh.view({G, T * B, 3 * H});
  auto d_w = at::bmm(flat.transpose(1, 2), h_prev);
  return {dgi, dh, d_w, flat.sum(1)};
}

}  // namespace dsid
