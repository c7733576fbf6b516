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
// layout cuBLASLt's FP8 kernels take (transa = T, transb = N: the cuBLAS documentation, cublasLtMatmul,
// FP8 requirements, which also ask for leading dimensions that are multiples of 16). Fills `plan` (whatever it created is freed
// with the plans even if a step throws); plan.ok stays false when cuBLASLt has no kernel for the shape.
void make_plan(Blas::Fp8& lt, Blas::Fp8::Plan& plan, int m, int n, int k, int ldc) {
  check(cublasLtMatmulDescCreate(&plan.op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  cublasOperation_t t = CUBLAS_OP_T, none = CUBLAS_OP_N;
  check(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)), "FP8 GEMM transa");
  check(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof(none)), "FP8 GEMM transb");
  check(cublasLtMatrixLayoutCreate(&plan.x, CUDA_R_8F_E4M3, std::uint64_t(k), std::uint64_t(n), k), "FP8 layout X");
  check(cublasLtMatrixLayoutCreate(&plan.y, CUDA_R_8F_E4M3, std::uint64_t(k), std::uint64_t(m), k), "FP8 layout Y");
  check(cublasLtMatrixLayoutCreate(&plan.c, CUDA_R_32F, std::uint64_t(n), std::uint64_t(m), ldc), "FP8 layout C");
  cublasLtMatmulPreference_t preference = nullptr;
  check(cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate");
  // C may start inside a larger tensor (a MoE chunk's rows): 16-byte aligned (use_fp8 checks), no more.
  std::uint32_t c_alignment_bytes = 16;
  auto status = cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                     &lt.workspace_bytes, sizeof(lt.workspace_bytes));
  for (auto attribute : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    if (status == CUBLAS_STATUS_SUCCESS)
      status = cublasLtMatmulPreferenceSetAttribute(preference, attribute, &c_alignment_bytes, sizeof(c_alignment_bytes));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (status == CUBLAS_STATUS_SUCCESS)
    status = cublasLtMatmulAlgoGetHeuristic(lt.handle, plan.op, plan.x, plan.y, plan.c, plan.c, preference, 1, &result,
                                            &found);
  cublasLtMatmulPreferenceDestroy(preference);
  if (status == CUBLAS_STATUS_NOT_SUPPORTED) return;  // no FP8 kernel for this shape
  check(status, fmt::format("FP8 GEMM heuristic for {}x{}x{}", m, n, k).c_str());
  plan.ok = found > 0;
  if (plan.ok) plan.algo = result.algo;
}

}  // namespace

Blas::Fp8::Fp8() {
  check(cublasLtCreate(&handle), "cublasLtCreate");
  if (auto status = cudaMalloc(&workspace, workspace_bytes); status != cudaSuccess) {
    cublasLtDestroy(handle);
    cuda::check(status, "cudaMalloc (cuBLASLt workspace)");
  }
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
  // cuBLASLt's FP8 kernels want K-major operands whose leading dimension (k) and the output's rows (n) are
  // multiples of 16; m is free. C is written in place, so it must be 16-byte aligned.
  const char* why = nullptr;
  if (p.m <= 0 || p.n <= 0 || p.k <= 0) why = "an empty dimension";
  else if (p.n % 16 || p.k % 16) why = "n and k must be multiples of 16";
  else if (p.ldc % 4 || reinterpret_cast<std::uintptr_t>(p.c) % 16) why = "C is not 16-byte aligned";
  if (!why) {
    auto key = std::make_tuple(p.m, p.n, p.k, p.ldc);
    auto it = lt.plans.find(key);
    if (it == lt.plans.end()) {
      it = lt.plans.emplace(key, Blas::Fp8::Plan{}).first;
      make_plan(lt, it->second, p.m, p.n, p.k, p.ldc);
    }
    if (!it->second.ok) why = "cuBLASLt has no FP8 kernel for it";
  }
  if (why && lt.fallbacks++ == 0)
    fmt::print(stderr, "pipesim: FP8 GEMM {}x{}x{} runs on BF16 tensor cores ({}); so do the stage's other such GEMMs, "
                       "left out of the operators a profile is fitted from\n", p.m, p.n, p.k, why);
  return !why;
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
  // 256-byte offsets: each operand as aligned as a fresh allocation, which cuBLASLt's heuristic assumes for
  // A and B by default.
  constexpr std::size_t kAlignment_bytes = 256;
  const std::size_t x_at = kAlignment_bytes, y_at = x_at + round_up(x_bytes, kAlignment_bytes);
  Fp8Operands q(y_at + y_bytes, stream);
  q.x_offset_bytes_ = x_at;
  q.y_offset_bytes_ = y_at;
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
  auto status = cublasLtMatmul(lt.handle, plan.op, &p.alpha, q.scratch_ + q.x_offset_bytes_, plan.x, q.scratch_ + q.y_offset_bytes_, plan.y,
                               &p.beta, p.c, plan.c, p.c, plan.c, &plan.algo, lt.workspace, lt.workspace_bytes, stream);
  if (status != CUBLAS_STATUS_SUCCESS) check(status, fmt::format("cublasLtMatmul (FP8, {}x{}x{})", p.m, p.n, p.k).c_str());
}

}  // namespace pipesim::cuda
