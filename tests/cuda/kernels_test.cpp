// The CUDA kernels against their CPU references (kernels/cpu) on random inputs: each GPU result within
// rounding of the CPU one (1e-12 relative in double, 1e-5 in float), top-k's indices exactly, and every
// kernel giving the same bits when run twice. Without a usable device every test reports SKIPPED with
// the reason (never PASSED).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/ops.hpp"
#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/buffer.hpp"
#include "kernels/cuda/check.hpp"
#include "tests/cuda/gpu_test.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/ops.hpp"

namespace pipesim {
namespace {

using cuda::DeviceBuffer;

template <class T>
std::vector<T> random(std::size_t n, unsigned seed, T scale = 1) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<T> out(n);
  for (auto& x : out) x = static_cast<T>(u(rng) * scale);
  return out;
}

template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, double> ? 1e-12 : 1e-5;
}

// Relative to the larger magnitude of the reference (entries near zero compare against the scale).
template <class T>
void expect_close(const std::vector<T>& gpu, const std::vector<T>& cpu, const char* what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  double scale = 1e-30;
  for (auto x : cpu) scale = std::max(scale, std::abs(static_cast<double>(x)));
  for (std::size_t i = 0; i < gpu.size(); ++i)
    ASSERT_NEAR(gpu[i], cpu[i], tolerance<T>() * scale) << what << " [" << i << "]";
}

void sync() { cuda::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

template <class T>
class CudaKernels : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(CudaKernels, Types);

// C = 0.5·op(A)·op(B) + 2·C on random inputs through `blas`: the GPU's C, then the CPU reference's.
template <class T>
std::pair<std::vector<T>, std::vector<T>> gemm_on_both(cuda::Blas& blas, int m, int n, int k, bool ta, bool tb) {
  auto a = random<T>(std::size_t(m) * k, 1), b = random<T>(std::size_t(k) * n, 2), c = random<T>(std::size_t(m) * n, 3);
  kernels::GemmParams<T> p{m, n, k, ta, tb, T(0.5), nullptr, ta ? m : k, nullptr, tb ? k : n, T(2), nullptr, n};
  auto cpu = c;
  auto host = p;
  host.a = a.data(), host.b = b.data(), host.c = cpu.data();
  kernels::gemm_reference(host);
  DeviceBuffer<T> da(a), db(b), dc(c);
  p.a = da.data(), p.b = db.data(), p.c = dc.data();
  cuda::gemm(blas, p, nullptr);
  sync();
  return {dc.download(), cpu};
}

TYPED_TEST(CudaKernels, GemmMatchesTheCpuKernelInEveryTransposition) {
  REQUIRE_GPU();
  cuda::Blas blas;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      auto [gpu, cpu] = gemm_on_both<TypeParam>(blas, 37, 29, 53, ta, tb);
      expect_close(gpu, cpu, ta ? (tb ? "AᵀBᵀ" : "AᵀB") : (tb ? "ABᵀ" : "AB"));
    }
}

// FP8 GEMMs (FP32 storage, E4M3 operands with per-tensor scales, through cuBLASLt) against the CPU kernel:
// off by E4M3's rounding (3 mantissa bits: a few per cent of the product, less with beta·C added), more than
// BF16's (under 1 %), so the FP8 kernel did run. A shape that is not a multiple of 16 runs on BF16 and is
// counted.
TEST(CudaGemmMath, Fp8IsOffByE4m3RoundingAndFallsBackToBf16) {
  REQUIRE_GPU();
  cuda::Blas blas(cuda::GemmMath::Fp8);
  auto relative = [&](int m, int n, int k, bool ta, bool tb) {  // the Frobenius norm of the error, relative
    auto [got, want] = gemm_on_both<float>(blas, m, n, k, ta, tb);
    double diff = 0, norm = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
      norm += double(want[i]) * want[i];
    }
    return std::sqrt(diff / norm);
  };
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      double error = relative(48, 32, 64, ta, tb);
      EXPECT_GT(error, 1e-2) << "ta " << ta << " tb " << tb << ": as exact as BF16; did FP8 run?";
      EXPECT_LT(error, 1e-1) << "ta " << ta << " tb " << tb;
    }
  EXPECT_EQ(blas.fp8_fallbacks(), 0);
  EXPECT_LT(relative(37, 29, 53, false, false), 1e-2);
  EXPECT_EQ(blas.fp8_fallbacks(), 1);
}

TYPED_TEST(CudaKernels, RmsNormForwardAndBothBackwards) {
  REQUIRE_GPU();
  using T = TypeParam;
  for (auto [rows, cols] : {std::pair{19, 48}, std::pair{37, 600}}) {  // narrower and wider than a block
  auto x = random<T>(std::size_t(rows) * cols, 4), w = random<T>(cols, 5), dy = random<T>(std::size_t(rows) * cols, 6);
  auto dweight = random<T>(cols, 7);
  std::vector<T> y(x.size()), rstd(rows), dx(x.size()), dw = dweight;
  kernels::rmsnorm_forward(rows, cols, x.data(), w.data(), T(1e-6), y.data(), rstd.data());
  kernels::rmsnorm_backward_input(rows, cols, x.data(), w.data(), rstd.data(), dy.data(), dx.data());
  kernels::rmsnorm_backward_weight(rows, cols, x.data(), rstd.data(), dy.data(), dw.data());
  DeviceBuffer<T> gx(x), gw(w), gdy(dy), gy(x.size()), grstd(static_cast<std::size_t>(rows)), gdx(x.size()), gdw(dweight);
  cuda::rmsnorm_forward(rows, cols, gx.data(), gw.data(), T(1e-6), gy.data(), grstd.data(), nullptr);
  cuda::rmsnorm_backward_input(rows, cols, gx.data(), gw.data(), grstd.data(), gdy.data(), gdx.data(), nullptr);
  cuda::rmsnorm_backward_weight(rows, cols, gx.data(), grstd.data(), gdy.data(), gdw.data(), nullptr);
  sync();
  expect_close(gy.download(), y, "y");
  expect_close(grstd.download(), rstd, "rstd");
  expect_close(gdx.download(), dx, "dx");
  expect_close(gdw.download(), dw, "dweight (accumulated)");
  }
}

TYPED_TEST(CudaKernels, SoftmaxCausalAndFull) {
  REQUIRE_GPU();
  using T = TypeParam;
  for (int rows : {23, 300}) {  // narrower and wider than a block
  const int cols = rows;
  auto x = random<T>(std::size_t(rows) * cols, 8, T(4)), dy = random<T>(x.size(), 9);
  for (bool causal : {false, true}) {
    std::vector<T> y(x.size()), dx(x.size());
    kernels::softmax_forward(rows, cols, x.data(), y.data(), causal);
    kernels::softmax_backward(rows, cols, y.data(), dy.data(), dx.data());
    DeviceBuffer<T> gx(x), gy(x.size()), gdy(dy), gdx(x.size());
    cuda::softmax_forward(rows, cols, gx.data(), gy.data(), causal, nullptr);
    cuda::softmax_backward(rows, cols, gy.data(), gdy.data(), gdx.data(), nullptr);
    sync();
    auto gpu_y = gy.download();
    expect_close(gpu_y, y, causal ? "causal y" : "y");
    expect_close(gdx.download(), dx, causal ? "causal dx" : "dx");
    if (causal) {
      EXPECT_EQ(gpu_y[1], T(0));  // row 0 sees only column 0: masked entries are exactly zero
    }
  }
  }
}

TYPED_TEST(CudaKernels, TopKPicksTheSameExpertsWithTiesInIndexOrder) {
  REQUIRE_GPU();
  using T = TypeParam;
  const int rows = 64, cols = 16, k = 4;
  auto x = random<T>(std::size_t(rows) * cols, 10);
  x[3] = x[5] = x[9] = T(0.99);  // a three-way tie in row 0
  std::vector<int> index(std::size_t(rows) * k);
  std::vector<T> value(index.size());
  kernels::top_k_reference(rows, cols, k, x.data(), index.data(), value.data());
  DeviceBuffer<T> gx(x), gv(value.size());
  DeviceBuffer<int> gi(index.size());
  cuda::top_k(rows, cols, k, gx.data(), gi.data(), gv.data(), nullptr);
  sync();
  EXPECT_EQ(gi.download(), index);
  EXPECT_EQ(gv.download(), value);
  EXPECT_EQ((std::vector<int>(index.begin(), index.begin() + 3)), (std::vector<int>{3, 5, 9}));
}

TYPED_TEST(CudaKernels, SwigluAndAdd) {
  REQUIRE_GPU();
  using T = TypeParam;
  const int n = 1000;
  auto gate = random<T>(n, 11, T(3)), up = random<T>(n, 12), dout = random<T>(n, 13);
  std::vector<T> out(n), dgate(n), dup(n), sum(n);
  kernels::swiglu_forward(n, gate.data(), up.data(), out.data());
  kernels::swiglu_backward(n, gate.data(), up.data(), dout.data(), dgate.data(), dup.data());
  kernels::add(n, gate.data(), up.data(), sum.data());
  DeviceBuffer<T> gg(gate), gu(up), gd(dout), go(n), gdg(n), gdu(n), gs(n);
  cuda::swiglu_forward(n, gg.data(), gu.data(), go.data(), nullptr);
  cuda::swiglu_backward(n, gg.data(), gu.data(), gd.data(), gdg.data(), gdu.data(), nullptr);
  cuda::add(n, gg.data(), gu.data(), gs.data(), nullptr);
  sync();
  expect_close(go.download(), out, "swiglu");
  expect_close(gdg.download(), dgate, "dgate");
  expect_close(gdu.download(), dup, "dup");
  EXPECT_EQ(gs.download(), sum);  // one rounding, the same on both
}

TYPED_TEST(CudaKernels, CausalAttentionForwardAndBackward) {
  REQUIRE_GPU();
  using T = TypeParam;
  cuda::Blas blas;
  for (auto s : {kernels::AttentionShape{2, 17, 3, 8}, kernels::AttentionShape{2, 300, 2, 16}}) {
  std::size_t n = std::size_t(s.rows()) * s.width(), np = std::size_t(s.probs_size());
  auto q = random<T>(n, 14), k = random<T>(n, 15), v = random<T>(n, 16), dout = random<T>(n, 17);
  std::vector<T> probs(np), out(n), dq(n), dk(n), dv(n);
  kernels::attention_forward_reference(s, q.data(), k.data(), v.data(), probs.data(), out.data());
  kernels::attention_backward_reference(s, q.data(), k.data(), v.data(), probs.data(), dout.data(), dq.data(), dk.data(),
                                        dv.data());
  DeviceBuffer<T> gq(q), gk(k), gv(v), gdout(dout), gp(np), go(n), gdq(n), gdk(n), gdv(n), scratch(np);
  cuda::attention_forward(blas, s, gq.data(), gk.data(), gv.data(), gp.data(), go.data(), nullptr);
  cuda::attention_backward(blas, s, gq.data(), gk.data(), gv.data(), gp.data(), gdout.data(), gdq.data(), gdk.data(),
                           gdv.data(), scratch.data(), nullptr);
  sync();
  expect_close(gp.download(), probs, "probs");
  expect_close(go.download(), out, "out");
  expect_close(gdq.download(), dq, "dq");
  expect_close(gdk.download(), dk, "dk");
  expect_close(gdv.download(), dv, "dv");
  // Deterministic: a second run gives the same bits.
  auto first = gdk.download();
  cuda::attention_backward(blas, s, gq.data(), gk.data(), gv.data(), gp.data(), gdout.data(), gdq.data(), gdk.data(),
                           gdv.data(), scratch.data(), nullptr);
  sync();
  EXPECT_EQ(gdk.download(), first);
  }
}

TYPED_TEST(CudaKernels, PermutationGathersAndCombinesRows) {
  REQUIRE_GPU();
  using T = TypeParam;
  const int tokens = 9, k = 2, cols = 5, rows = tokens * k;
  auto in = random<T>(std::size_t(tokens) * cols, 18);
  // Slot r of the expert order holds token source[r]; token t's j-th choice sits at slot[t·k + j].
  std::vector<int> source(static_cast<std::size_t>(rows)), slot(static_cast<std::size_t>(rows));
  for (int r = 0; r < rows; ++r) source[std::size_t(r)] = (r * 7) % tokens;
  for (int t = 0; t < tokens; ++t)
    for (int j = 0; j < k; ++j) slot[std::size_t(t * k + j)] = (t * k + j * 5) % rows;
  slot[3] = -1;  // dropped
  auto weight = random<T>(std::size_t(rows), 19);
  std::vector<T> gathered(std::size_t(rows) * cols), combined(std::size_t(tokens) * cols);
  kernels::gather_rows(rows, cols, source.data(), in.data(), gathered.data());
  kernels::combine_rows(tokens, k, cols, slot.data(), weight.data(), gathered.data(), combined.data());
  DeviceBuffer<T> gin(in), gg(gathered.size()), gw(weight), gc(combined.size());
  DeviceBuffer<int> gsrc(source), gslot(slot);
  cuda::gather_rows(rows, cols, gsrc.data(), gin.data(), gg.data(), nullptr);
  cuda::combine_rows(tokens, k, cols, gslot.data(), gw.data(), gg.data(), gc.data(), nullptr);
  sync();
  EXPECT_EQ(gg.download(), gathered);
  expect_close(gc.download(), combined, "combined");  // the GPU may fuse multiply-adds
}

TYPED_TEST(CudaKernels, GateGradientSendsEachSlotItsRowAndDotProduct) {
  REQUIRE_GPU();
  using T = TypeParam;
  const int tokens = 7, k = 3, cols = 300;  // more columns than a block has threads
  std::vector<int> slot(std::size_t(tokens * k));
  for (int s = 0; s < tokens * k; ++s) slot[std::size_t(s)] = (s * 8) % (tokens * k);  // a permutation
  slot[5] = -1;                                                                          // and a dropped slot
  auto weight = random<T>(slot.size(), 31), dy = random<T>(std::size_t(tokens) * cols, 32),
       out = random<T>(slot.size() * cols, 33);
  std::vector<T> rows(out.size(), T(7)), dweight(slot.size());
  DeviceBuffer<T> grows(rows);  // the dropped slot's row keeps what it held
  kernels::moe_gate_grad(tokens, k, cols, slot.data(), weight.data(), dy.data(), out.data(), rows.data(), dweight.data());
  DeviceBuffer<int> gslot(slot);
  DeviceBuffer<T> gw(weight), gdy(dy), gout(out), gdw(dweight.size());
  cuda::moe_gate_grad(tokens, k, cols, gslot.data(), gw.data(), gdy.data(), gout.data(), grows.data(), gdw.data(), nullptr);
  sync();
  EXPECT_EQ(grows.download(), rows);                      // products, exact
  expect_close(gdw.download(), dweight, "gate gradient");  // sums in another order
}

TYPED_TEST(CudaKernels, MseLossAndItsGradientOnAStreamOrderedBuffer) {
  REQUIRE_GPU();
  using T = TypeParam;
  const int n = 5003;  // many elements per thread, not a multiple of the block
  auto out = random<T>(n, 21), target = random<T>(n, 22);
  double squares = 0;
  std::vector<T> dout(n);
  for (int i = 0; i < n; ++i) {
    T d = out[std::size_t(i)] - target[std::size_t(i)];
    squares += double(d) * double(d);
    dout[std::size_t(i)] = d / T(n);
  }
  cudaStream_t stream = nullptr;
  cuda::check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  std::vector<T> first;
  for (int run = 0; run < 2; ++run) {
    DeviceBuffer<T> go(out), gt(target), gd(std::size_t(n), stream), loss(1, stream);
    cuda::mse_loss(n, go.data(), gt.data(), gd.data(), loss.data(), stream);
    cuda::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    expect_close(gd.download(), dout, "dout");
    auto value = loss.download();
    EXPECT_NEAR(double(value[0]), squares / (2.0 * n), tolerance<T>() * squares / n);
    if (run == 0) first = value;
    else EXPECT_EQ(value, first);  // the same bits again
  }
  cuda::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  cudaStreamDestroy(stream);
}

TEST(CudaDevice, NoDeviceIsReportedNotCrashed) {
  // Holds on every machine: either a device is there, or the reason says why not.
  if (cuda::device_count() == 0) {
    EXPECT_FALSE(cuda::no_device_reason().empty());
  } else {
    EXPECT_TRUE(cuda::no_device_reason().empty());
  }
}

}  // namespace
}  // namespace pipesim
