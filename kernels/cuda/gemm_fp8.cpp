// FP8 GEMMs through cuBLASLt (see gemm_fp8.hpp).
#include "kernels/cuda/gemm_fp8.hpp"

#include <cstdint>

#include <fmt/format.h>

#include "common/error.hpp"
#include "kernels/cuda/check.hpp"
#include "kernels/cuda/fp8.hpp"

namespace pipesim::cuda {
namespace {

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// Row-major C [m x n] = op(A) [m x k] · op(B) [k x n] is column-major D (n x m) = X^T · Y with X = op(B)^T
// stored K-major (column-major k x n) and Y = op(A) stored K-major (column-major k x m): the only operand
// layout cuBLASLt's FP8 kernels take (transa = T, transb = N).
Blas::Fp8::Plan make_plan(Blas::Fp8& lt, int m, int n, int k, int ldc) {
  Blas::Fp8::Plan plan;
  check(cublasLtMatmulDescCreate(&plan.op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  cublasOperation_t t = CUBLAS_OP_T, none = CUBLAS_OP_N;
  check(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)), "FP8 GEMM transa");
  check(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof(none)), "FP8 GEMM transb");
  check(cublasLtMatrixLayoutCreate(&plan.x, CUDA_R_8F_E4M3, std::uint64_t(k), std::uint64_t(n), k), "FP8 layout X");
  check(cublasLtMatrixLayoutCreate(&plan.y, CUDA_R_8F_E4M3, std::uint64_t(k), std::uint64_t(m), k), "FP8 layout Y");
  check(cublasLtMatrixLayoutCreate(&plan.c, CUDA_R_32F, std::uint64_t(n), std::uint64_t(m), ldc), "FP8 layout C");
  cublasLtMatmulPreference_t preference = nullptr;
  check(cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate");
  check(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &lt.workspace_bytes,
                                             sizeof(lt.workspace_bytes)),
        "FP8 GEMM workspace");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  auto status = cublasLtMatmulAlgoGetHeuristic(lt.handle, plan.op, plan.x, plan.y, plan.c, plan.c, preference, 1,
                                               &result, &found);
  cublasLtMatmulPreferenceDestroy(preference);
  plan.ok = status == CUBLAS_STATUS_SUCCESS && found > 0;  // NOT_SUPPORTED: no FP8 kernel for this shape
  if (plan.ok) plan.algo = result.algo;
  return plan;
}

}  // namespace

Blas::Fp8::Fp8() {
  check(cublasLtCreate(&handle), "cublasLtCreate");
  cuda::check(cudaMalloc(&workspace, workspace_bytes), "cudaMalloc (cuBLASLt workspace)");
}

Blas::Fp8::~Fp8() {
  for (auto& [shape, plan] : plans) {
    if (plan.c) cublasLtMatrixLayoutDestroy(plan.c);
    if (plan.y) cublasLtMatrixLayoutDestroy(plan.y);
    if (plan.x) cublasLtMatrixLayoutDestroy(plan.x);
    if (plan.op) cublasLtMatmulDescDestroy(plan.op);
  }
  if (workspace) cudaFree(workspace);
  if (handle) cublasLtDestroy(handle);
}

bool use_fp8(Blas::Fp8& lt, const kernels::GemmParams<float>& p) {
  bool ok = p.m % 16 == 0 && p.n % 16 == 0 && p.k % 16 == 0 && p.ldc % 4 == 0;
  if (ok) {
    auto key = std::make_tuple(p.m, p.n, p.k, p.ldc);
    auto it = lt.plans.find(key);
    if (it == lt.plans.end()) it = lt.plans.emplace(key, make_plan(lt, p.m, p.n, p.k, p.ldc)).first;
    ok = it->second.ok;
  }
  if (!ok && lt.fallbacks++ == 0)
    fmt::print(stderr, "pipesim: no FP8 GEMM kernel for {}x{}x{} (m, n, k must be multiples of 16): such GEMMs run "
                       "on BF16 tensor cores\n", p.m, p.n, p.k);
  return ok;
}

double fp8_quantize_bytes(const kernels::GemmParams<float>& p) {
  return (double(p.m) + double(p.n)) * double(p.k) * (2 * sizeof(float) + 1);
}

// Scratch: two amax and two dequantization scales, then X and Y.
Fp8Operands::Fp8Operands(std::size_t bytes, cudaStream_t stream) : stream_(stream) {
  cuda::check(cudaMallocAsync(reinterpret_cast<void**>(&scratch_), bytes, stream), "cudaMallocAsync (FP8 operands)");
}

Fp8Operands::~Fp8Operands() {
  if (scratch_) cudaFreeAsync(scratch_, stream_);
}

Fp8Operands fp8_quantize(const kernels::GemmParams<float>& p, cudaStream_t stream) {
  const std::size_t x_bytes = std::size_t(p.n) * std::size_t(p.k), y_bytes = std::size_t(p.m) * std::size_t(p.k);
  const std::size_t x_at = 256, y_at = x_at + round_up(x_bytes, 256);
  Fp8Operands q(y_at + y_bytes, stream);
  q.x_at_ = x_at;
  q.y_at_ = y_at;
  auto* scales = reinterpret_cast<float*>(q.scratch_);  // amax X, amax Y, dequant X, dequant Y
  auto* x = reinterpret_cast<std::uint8_t*>(q.scratch_ + x_at);
  auto* y = reinterpret_cast<std::uint8_t*>(q.scratch_ + y_at);
  cuda::check(cudaMemsetAsync(scales, 0, 2 * sizeof(float), stream), "cudaMemsetAsync (FP8 amax)");
  // X = op(B)^T [n x k] row-major: B as stored if it is op(B)^T already (trans_b), else transposed.
  const int b_rows = p.trans_b ? p.n : p.k, b_cols = p.trans_b ? p.k : p.n;
  abs_max(b_rows, b_cols, p.b, p.ldb, &scales[0], stream);
  quantize_e4m3(b_rows, b_cols, p.b, p.ldb, !p.trans_b, &scales[0], x, &scales[2], stream);
  // Y = op(A) [m x k] row-major: A as stored unless trans_a.
  const int a_rows = p.trans_a ? p.k : p.m, a_cols = p.trans_a ? p.m : p.k;
  abs_max(a_rows, a_cols, p.a, p.lda, &scales[1], stream);
  quantize_e4m3(a_rows, a_cols, p.a, p.lda, p.trans_a, &scales[1], y, &scales[3], stream);
  return q;
}

void fp8_multiply(Blas::Fp8& lt, const kernels::GemmParams<float>& p, const Fp8Operands& q, cudaStream_t stream) {
  auto& plan = lt.plans.at(std::make_tuple(p.m, p.n, p.k, p.ldc));
  const auto* scales = reinterpret_cast<const float*>(q.scratch_);
  const float* x_scale = &scales[2];
  const float* y_scale = &scales[3];
  check(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &x_scale, sizeof(x_scale)),
        "FP8 GEMM scale X");
  check(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &y_scale, sizeof(y_scale)),
        "FP8 GEMM scale Y");
  check(cublasLtMatmul(lt.handle, plan.op, &p.alpha, q.scratch_ + q.x_at_, plan.x, q.scratch_ + q.y_at_, plan.y, &p.beta,
                       p.c, plan.c, p.c, plan.c, &plan.algo, lt.workspace, lt.workspace_bytes, stream),
        fmt::format("cublasLtMatmul (FP8, {}x{}x{})", p.m, p.n, p.k).c_str());
}

}  // namespace pipesim::cuda
