// Matrix products on raw pointers for the scans' per-bin loops: BLAS called directly where PyTorch's library
// exports it (a per-bin product is microseconds of arithmetic, and each at::mm call costs several more in
// dispatch, checks and tensor views), else at::mm on tensors wrapping the same memory.
#pragma once

#include <torch/extension.h>

#include <cstdint>

extern "C" {
// Fortran BLAS (column-major); weak: absent where the library does not export them
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc) __attribute__((weak));
void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc) __attribute__((weak));
}

namespace dsid {

// Whether gemm calls BLAS directly where it can (tests switch it off to check the fallback).
inline bool& direct_blas() {
  static bool on = true;
  return on;
}

namespace detail {
inline bool fortran_gemm(const float*) { return sgemm_ != nullptr; }
inline bool fortran_gemm(const double*) { return dgemm_ != nullptr; }
inline void call(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
                 const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
                 const int* ldc) {
  sgemm_(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void call(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
                 const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
                 const int* ldc) {
  dgemm_(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
template <typename T>
at::Tensor wrap(const T* p, int64_t rows, int64_t cols, int64_t ld, bool transposed) {  // op(stored matrix)
  auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  if (!transposed) return at::from_blob(const_cast<T*>(p), {rows, cols}, {ld, 1}, opts);
  return at::from_blob(const_cast<T*>(p), {cols, rows}, {ld, 1}, opts).t();
}
}  // namespace detail

// Row-major C (m x n, leading dimension ldc) = op(A) op(B) (accumulate: + C); op(A) is m x k, op(B) k x n;
// ta / tb: A / B are stored transposed (k x m / n x k row-major, leading dimensions lda / ldb).
template <typename T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* A, int64_t lda, const T* B, int64_t ldb,
          bool accumulate, T* C, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (direct_blas() && detail::fortran_gemm(A) && k > 0) {  // row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T
    const char fa = tb ? 'T' : 'N', fb = ta ? 'T' : 'N';
    const int M = static_cast<int>(n), N = static_cast<int>(m), K = static_cast<int>(k);
    const int la = static_cast<int>(ldb), lb = static_cast<int>(lda), lc = static_cast<int>(ldc);
    const T one = 1, beta = accumulate ? 1 : 0;
    detail::call(&fa, &fb, &M, &N, &K, &one, B, &la, A, &lb, &beta, C, &lc);
    return;
  }
  at::Tensor c = detail::wrap(static_cast<const T*>(C), m, n, ldc, false);
  at::Tensor a = detail::wrap(A, m, k, lda, ta), b = detail::wrap(B, k, n, ldb, tb);
  if (accumulate)
    c.addmm_(a, b);
  else
    at::mm_out(c, a, b);
}

}  // namespace dsid
