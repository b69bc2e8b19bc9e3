// Python bindings of the recurrent scans (loaded by dsid/modules/recurrent/native.py).
#include <torch/extension.h>

#include <vector>

#include "blas.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

// Keep freed large blocks in the process instead of returning them to the system: every training step
// allocates the same large buffers again, and fresh pages from the system cost a page fault each on first
// touch (in a virtual machine, as much as the arithmetic). Returns whether the allocator took the setting.
bool keep_freed_memory() {
#if defined(__GLIBC__)
  const int big = 1 << 30;
  return mallopt(M_MMAP_THRESHOLD, big) == 1 && mallopt(M_TRIM_THRESHOLD, big) == 1;
#else
  return false;
#endif
}

namespace dsid {
std::vector<at::Tensor> gru_scan_forward(at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                                         std::vector<bool>, double, bool);
std::vector<at::Tensor> gru_scan_backward(at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                                          at::Tensor, at::Tensor, std::vector<bool>, double, bool, int64_t);
std::vector<at::Tensor> lfads_scan_forward(at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                                           at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                                           at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                                           at::Tensor, bool, double, double, bool);
std::vector<at::Tensor> lfads_scan_backward(at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                                            at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                                            at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                                            at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                                            at::Tensor, at::Tensor, at::Tensor, at::Tensor, bool, double, double);
at::Tensor dropout_mask(std::vector<int64_t>, double, int64_t, at::Tensor);
at::Tensor log_factorial(at::Tensor);
}  // namespace dsid

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("keep_freed_memory", &keep_freed_memory);
  // direct BLAS in the scans' per-bin products: set it, get the previous setting; whether the library has it
  m.def("set_direct_blas", [](bool on) {
    const bool old = dsid::direct_blas();
    dsid::direct_blas() = on;
    return old;
  });
  m.def("direct_blas_available", [] { return sgemm_ != nullptr && dgemm_ != nullptr; });
  m.def("dropout_mask", &dsid::dropout_mask);
  m.def("log_factorial", &dsid::log_factorial);
  m.def("gru_scan_forward", &dsid::gru_scan_forward);
  m.def("gru_scan_backward", &dsid::gru_scan_backward);
  m.def("lfads_scan_forward", &dsid::lfads_scan_forward);
  m.def("lfads_scan_backward", &dsid::lfads_scan_backward);
}
