// cuBLAS GEMM with the row-major contract (see gemm.hpp).
#include "kernels/cuda/gemm.hpp"

#include <type_traits>

#include <fmt/format.h>

#include "common/error.hpp"
#include "kernels/cuda/check.hpp"
#include "kernels/cuda/gemm_fp8.hpp"

namespace pipesim::cuda {

void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Error(fmt::format("cuBLAS: {}: {} ({})", what, cublasGetStatusString(status), static_cast<int>(status)),
                Error::Kind::Internal);
}

Blas::Blas(GemmMath math) : math_(math) {
  check(cublasCreate(&handle_), "cublasCreate");
  if (math != GemmMath::Fp8) return;
  try {
    fp8_ = std::make_unique<Fp8>();
  } catch (...) {
    cublasDestroy(handle_);
    throw;
  }
}

Blas::~Blas() {
  fp8_.reset();
  if (handle_) cublasDestroy(handle_);
}

long long Blas::fp8_fallbacks() const { return fp8_ ? fp8_->fallbacks : 0; }

namespace {

// Tensor-core math other than FP8's: attention's batched GEMMs and the shapes FP8 refuses take BF16.
cublasComputeType_t compute_type(GemmMath math) {
  return math == GemmMath::Tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F_FAST_16BF;
}

}  // namespace

template <class T>
void gemm(Blas& blas, const kernels::GemmParams<T>& p, cudaStream_t stream, bool try_fp8) {
  if (p.m < 0 || p.n < 0 || p.k < 0) throw Error(fmt::format("gemm: bad shape {}x{}x{}", p.m, p.n, p.k), Error::Kind::Internal);
  if (p.m == 0 || p.n == 0) return;
  check(cublasSetStream(blas.handle(), stream), "cublasSetStream");
  auto op_a = p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  auto op_b = p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  // Column-major view: Cᵀ (n x m) = op(B)ᵀ (n x k) · op(A)ᵀ (k x m).
  if constexpr (std::is_same_v<T, float>) {
    if (blas.fp8() && try_fp8 && use_fp8(*blas.fp8(), p)) {
      fp8_multiply(*blas.fp8(), p, fp8_quantize(p, stream), stream);
      return;
    }
    if (blas.math() != GemmMath::Exact) {
      check(cublasGemmEx(blas.handle(), op_b, op_a, p.n, p.m, p.k, &p.alpha, p.b, CUDA_R_32F, p.ldb, p.a, CUDA_R_32F,
                         p.lda, &p.beta, p.c, CUDA_R_32F, p.ldc, compute_type(blas.math()), CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx");
      return;
    }
    check(cublasSgemm(blas.handle(), op_b, op_a, p.n, p.m, p.k, &p.alpha, p.b, p.ldb, p.a, p.lda, &p.beta, p.c, p.ldc),
          "cublasSgemm");
  } else {
    check(cublasDgemm(blas.handle(), op_b, op_a, p.n, p.m, p.k, &p.alpha, p.b, p.ldb, p.a, p.lda, &p.beta, p.c, p.ldc),
          "cublasDgemm");
  }
}

template <class T>
void gemm_batched(Blas& blas, const kernels::GemmParams<T>& p, const BatchStrides& s, cudaStream_t stream) {
  if (p.m < 0 || p.n < 0 || p.k < 0 || s.batch < 0)
    throw Error(fmt::format("gemm_batched: bad shape {}x{}x{} x{}", p.m, p.n, p.k, s.batch), Error::Kind::Internal);
  if (p.m == 0 || p.n == 0 || s.batch == 0) return;
  check(cublasSetStream(blas.handle(), stream), "cublasSetStream");
  auto op_a = p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  auto op_b = p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  if constexpr (std::is_same_v<T, float>) {
    if (blas.math() != GemmMath::Exact) {
      check(cublasGemmStridedBatchedEx(blas.handle(), op_b, op_a, p.n, p.m, p.k, &p.alpha, p.b, CUDA_R_32F, p.ldb, s.b,
                                       p.a, CUDA_R_32F, p.lda, s.a, &p.beta, p.c, CUDA_R_32F, p.ldc, s.c, s.batch,
                                       compute_type(blas.math()), CUBLAS_GEMM_DEFAULT),
            "cublasGemmStridedBatchedEx");
      return;
    }
    check(cublasSgemmStridedBatched(blas.handle(), op_b, op_a, p.n, p.m, p.k, &p.alpha, p.b, p.ldb, s.b, p.a, p.lda, s.a,
                                    &p.beta, p.c, p.ldc, s.c, s.batch),
          "cublasSgemmStridedBatched");
  } else {
    check(cublasDgemmStridedBatched(blas.handle(), op_b, op_a, p.n, p.m, p.k, &p.alpha, p.b, p.ldb, s.b, p.a, p.lda, s.a,
                                    &p.beta, p.c, p.ldc, s.c, s.batch),
          "cublasDgemmStridedBatched");
  }
}

template void gemm<float>(Blas&, const kernels::GemmParams<float>&, cudaStream_t, bool);
template void gemm<double>(Blas&, const kernels::GemmParams<double>&, cudaStream_t, bool);
template void gemm_batched<float>(Blas&, const kernels::GemmParams<float>&, const BatchStrides&, cudaStream_t);
template void gemm_batched<double>(Blas&, const kernels::GemmParams<double>&, const BatchStrides&, cudaStream_t);

}  // namespace pipesim::cuda
