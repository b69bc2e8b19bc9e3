// Scan of G GRUs over the same T-bin input, some of them reading it backwards in time, forward and
// backward through time. Layout (T, B, G, .): one product gives every group's input projection, the
// groups' states of a bin sit side by side (the bidirectional encoder's outputs are views), and a
// reversed group reads and writes bin T - 1 - s at scan step s, so nothing is flipped or copied.
// Per step: one batched product for the recurrent half of all groups and one fused element-wise pass
// per group (gru_kernels.h). The weight gradients are products over chunks of bins.
#include <torch/extension.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "blas.h"
#include "gru_kernels.h"

namespace dsid {

namespace {
int64_t bin_at(bool reverse, int64_t T, int64_t s) { return reverse ? T - 1 - s : s; }
}  // namespace

// x (T, B, N), w_ih (G, 3H, N), b_ih (G, 3H), h0 (G, B, H), w_hh (G, 3H, H), b_hh (G, 3H).
// Returns states (T, B, G, H), the last state of every group (G, B, H) and, when keep, the gates for
// the backward (T, B, G, 4H); without keep (inference) only one step's gates are held at a time.
std::vector<at::Tensor> gru_scan_forward(at::Tensor x, at::Tensor w_ih, at::Tensor b_ih, at::Tensor h0,
                                         at::Tensor w_hh, at::Tensor b_hh, std::vector<bool> reverse,
                                         double clip, bool keep) {
  x = x.contiguous();
  const int64_t T = x.size(0), B = x.size(1), N = x.size(2), G = w_hh.size(0), H = w_hh.size(2);
  TORCH_CHECK(static_cast<int64_t>(reverse.size()) == G, "gru_scan: one reverse flag per group");
  auto gi = at::mm(x.view({T * B, N}), w_ih.reshape({G * 3 * H, N}).t());  // + b_ih in the element-wise pass
  auto hs = at::empty({T, B, G, H}, x.options());
  auto gates = keep ? at::empty({T, B, G, 4 * H}, x.options()) : at::empty({1, B, G, 4 * H}, x.options());
  auto h = h0.contiguous().clone();
  auto gh = at::empty({G, B, 3 * H}, x.options());
  w_hh = w_hh.contiguous();
  auto bias = b_hh.contiguous(), bias_i = b_ih.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gru_scan_forward", [&] {
    scalar_t* gi_p = gi.data_ptr<scalar_t>();
    scalar_t* hs_p = hs.data_ptr<scalar_t>();
    scalar_t* gates_p = gates.data_ptr<scalar_t>();
    scalar_t *h_p = h.data_ptr<scalar_t>(), *gh_p = gh.data_ptr<scalar_t>();
    const scalar_t* whh_p = w_hh.data_ptr<scalar_t>();
    for (int64_t s = 0; s < T; ++s) {
      for (int64_t g = 0; g < G; ++g)  // gh[g] = h[g] W_hh[g]^T
        gemm<scalar_t>(false, true, B, 3 * H, H, h_p + g * B * H, H, whh_p + g * 3 * H * H, H, false,
                       gh_p + g * B * 3 * H, 3 * H);
      for (int64_t g = 0; g < G; ++g) {
        const int64_t t = bin_at(reverse[g], T, s), row = t * B * G + g, gate_row = (keep ? t : 0) * B * G + g;
        GruForward<scalar_t> a{{gi_p + row * 3 * H, G * 3 * H},
                               {},
                               {gh.data_ptr<scalar_t>() + g * B * 3 * H, 3 * H},
                               bias_i.data_ptr<scalar_t>() + g * 3 * H,
                               bias.data_ptr<scalar_t>() + g * 3 * H,
                               {h.data_ptr<scalar_t>() + g * B * H, H},
                               {gates_p + gate_row * 4 * H, G * 4 * H},
                               {hs_p + row * H, G * H},
                               {h.data_ptr<scalar_t>() + g * B * H, H},
                               static_cast<scalar_t>(clip)};
        gru_forward<scalar_t>(B, H, a);
      }
    }
  });
  return {hs, h, gates};
}

// Gradients of (x, w_ih, b_ih, h0, w_hh, b_hh) from those of the states (d_hs) and of the last states
// (d_last); an empty tensor stands for a zero gradient. x's gradient only when need_dx (else empty).
// The gradients of the pre-activations are kept for chunk_bins scan steps at a time; each full chunk
// adds its share of the weight (and input) gradients in one product per group, so the backward's
// memory does not grow with T beyond what the forward kept.
std::vector<at::Tensor> gru_scan_backward(at::Tensor d_hs, at::Tensor d_last, at::Tensor x, at::Tensor w_ih,
                                          at::Tensor h0, at::Tensor w_hh, at::Tensor hs, at::Tensor gates,
                                          std::vector<bool> reverse, double clip, bool need_dx,
                                          int64_t chunk_bins) {
  x = x.contiguous();
  h0 = h0.contiguous();
  w_hh = w_hh.contiguous();
  w_ih = w_ih.contiguous();
  const int64_t T = hs.size(0), B = hs.size(1), G = hs.size(2), H = hs.size(3), N = x.size(2);
  const int64_t K = std::max<int64_t>(1, std::min(chunk_bins, T));
  if (d_hs.numel()) d_hs = d_hs.contiguous();
  auto o = hs.options();
  auto dgi = at::empty({K, B, G, 3 * H}, o);  // d(gi) and d(gh)'s n-part of one chunk's bins
  auto dgh_n = at::empty({K, B, G, H}, o);
  auto dgh = at::empty({G, B, 3 * H}, o);
  auto dh = d_last.numel() ? d_last.contiguous().clone() : at::zeros({G, B, H}, o);
  auto d_w_ih = at::zeros({G, 3 * H, N}, o), d_w_hh = at::zeros({G, 3 * H, H}, o);
  auto d_x = need_dx ? at::zeros({T, B, N}, o) : at::empty({0}, o);
  const int64_t threads = at::get_num_threads();
  auto bias_acc = at::zeros({G, threads, 4 * H}, o);  // per group and thread: d(b_ih) | d(b_hh)'s n-part
  // the first bin of group g's share of the chunk of scan steps [s0, s1): its bins run forwards from there
  auto first_bin = [&](int64_t g, int64_t s0, int64_t s1) { return reverse[g] ? T - s1 : s0; };
  auto flush = [&](int64_t s0, int64_t s1) {  // the chunk's share of the weight and input gradients
    const int64_t n = s1 - s0;
    for (int64_t g = 0; g < G; ++g) {
      const int64_t b0 = first_bin(g, s0, s1);
      auto d = dgi.narrow(0, 0, n).select(2, g);  // (n, B, 3H): bins b0 .. b0 + n - 1
      auto flat = d.reshape({n * B, 3 * H});
      d_w_ih[g].addmm_(flat.t(), x.narrow(0, b0, n).reshape({n * B, N}));
      if (need_dx) d_x.narrow(0, b0, n).view({n * B, N}).addmm_(flat, w_ih[g]);
      // W_hh: the r, z rows from d(gi), the n rows from d(gh)'s n-part, against the state before each bin
      // (h0 before the group's first bin: bin 0, or bin T - 1 for a reversed group)
      const int64_t h0_slot = reverse[g] ? (b0 + n == T ? n - 1 : -1) : (b0 == 0 ? 0 : -1);
      const int64_t from = !reverse[g] && h0_slot == 0 ? 1 : 0, m = n - (h0_slot >= 0 ? 1 : 0);
      const int64_t prev0 = b0 + from + (reverse[g] ? 1 : -1);  // the state before slot `from`
      for (auto part : {std::make_pair(d.narrow(2, 0, 2 * H), d_w_hh[g].narrow(0, 0, 2 * H)),
                        std::make_pair(dgh_n.narrow(0, 0, n).select(2, g), d_w_hh[g].narrow(0, 2 * H, H))}) {
        at::Tensor out = part.second;
        const int64_t R = part.first.size(2);
        if (h0_slot >= 0) out.addmm_(part.first[h0_slot].t(), h0[g]);
        if (m > 0)
          out.addmm_(part.first.narrow(0, from, m).reshape({m * B, R}).t(),
                     hs.narrow(0, prev0, m).select(2, g).reshape({m * B, H}));
      }
    }
  };
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "gru_scan_backward", [&] {
    scalar_t* hs_p = hs.data_ptr<scalar_t>();
    scalar_t* d_hs_p = d_hs.numel() ? d_hs.data_ptr<scalar_t>() : nullptr;
    scalar_t *dgh_p = dgh.data_ptr<scalar_t>(), *dh_p = dh.data_ptr<scalar_t>();
    const scalar_t* whh_p = w_hh.data_ptr<scalar_t>();
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t s0 = s / K * K, s1 = std::min(s0 + K, T);  // this step's chunk of scan steps
      for (int64_t g = 0; g < G; ++g) {
        const int64_t t = bin_at(reverse[g], T, s), row = t * B * G + g;
        const int64_t slot = (t - first_bin(g, s0, s1)) * B * G + g;
        Rows<scalar_t> h_prev = s == 0 ? Rows<scalar_t>{h0.data_ptr<scalar_t>() + g * B * H, H}
                                       : Rows<scalar_t>{hs_p + (bin_at(reverse[g], T, s - 1) * B * G + g) * H, G * H};
        GruBackward<scalar_t> a{{dh.data_ptr<scalar_t>() + g * B * H, H},
                                {d_hs_p ? d_hs_p + row * H : nullptr, G * H},
                                {},
                                {},
                                {hs_p + row * H, G * H},
                                h_prev,
                                {gates.data_ptr<scalar_t>() + row * 4 * H, G * 4 * H},
                                {dgi.data_ptr<scalar_t>() + slot * 3 * H, G * 3 * H},
                                {dgh.data_ptr<scalar_t>() + g * B * 3 * H, 3 * H},
                                {dgh_n.data_ptr<scalar_t>() + slot * H, G * H},
                                static_cast<scalar_t>(clip),
                                bias_acc.data_ptr<scalar_t>() + g * threads * 4 * H};
        gru_backward<scalar_t>(B, H, a);
      }
      for (int64_t g = 0; g < G; ++g)  // dh[g] += dgh[g] W_hh[g]
        gemm<scalar_t>(false, false, B, H, 3 * H, dgh_p + g * B * 3 * H, 3 * H, whh_p + g * 3 * H * H, H, true,
                       dh_p + g * B * H, H);
      if (s == s0) flush(s0, s1);
    }
  });
  auto bias_sum = bias_acc.sum(1);  // (G, 4H)
  auto d_b_ih = bias_sum.narrow(1, 0, 3 * H).contiguous();
  auto d_b_hh = at::empty({G, 3 * H}, o);
  d_b_hh.narrow(1, 0, 2 * H).copy_(d_b_ih.narrow(1, 0, 2 * H));
  d_b_hh.narrow(1, 2 * H, H).copy_(bias_sum.narrow(1, 3 * H, H));
  return {d_x, d_w_ih, d_b_ih, dh, d_w_hh, d_b_hh};
}

}  // namespace dsid
