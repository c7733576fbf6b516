// The workload's F, I and W: gradients against central finite differences (a layer, a whole stage); a
// model split into stages, or run with F/I/W interleaved across micro-batches in any legal order, gives
// the unsplit model's losses bit for bit and its gradients to 1e-12; B is I then W; misuse is refused.
// Mixture of experts: gradients against finite differences, and EP = 2 (two threads trading rows through
// an in-process all-to-all) against one EP = 1 model running every micro-batch.
#include "runtime/stage_model.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/numeric.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "tests/runtime/thread_all_to_all.hpp"

namespace pipesim {
namespace {

using Grads = std::map<std::string, std::vector<double>>;

std::vector<double> random_vector(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<double> v(size);
  for (auto& x : v) x = double(gen() >> 11) * 0x1p-53 * 2.0 - 1.0;
  return v;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}


// Fourth-order central difference: truncation O(h⁴) lets h be large enough that rounding in the loss
// (divided by h) stays far below the 1e-6 the checks ask for.
double central_difference(const std::function<double(double)>& loss_at_offset) {
  const double h = 1e-3;
  return (8 * (loss_at_offset(h) - loss_at_offset(-h)) - (loss_at_offset(2 * h) - loss_at_offset(-2 * h))) / (12 * h);
}

template <class T>
std::map<std::string, std::vector<double>> gradients_of(const std::vector<const StageModel<T>*>& stages) {
  std::map<std::string, std::vector<double>> out;
  for (const auto* stage : stages)
    for (auto& [name, g] : stage->gradients()) out[name] = std::vector<double>(g.begin(), g.end());
  return out;
}

// Checks analytic gradients of `loss(model)` against finite differences: w.r.t. every element of `input`
// (if given) and w.r.t. `per_tensor` evenly spread elements of every parameter (0: all of them). `fresh`
// builds a new model, so each evaluation starts clean.
void check_gradients(const std::function<std::unique_ptr<StageModel<double>>()>& fresh,
                     const std::function<double(StageModel<double>&, const std::vector<double>&)>& loss,
                     const std::vector<double>& input, const std::vector<double>& analytic_input, const Grads& analytic,
                     std::size_t per_tensor) {
  if (!analytic_input.empty()) {
    std::vector<double> got, want;
    for (std::size_t i = 0; i < input.size(); ++i) {
      want.push_back(central_difference([&](double h) {
        auto x = input;
        x[i] += h;
        auto model = fresh();
        return loss(*model, x);
      }));
      got.push_back(analytic_input[i]);
    }
    EXPECT_LT(relative_error(got, want), 1e-6) << "input";
  }
  auto names = fresh()->parameters();
  for (std::size_t t = 0; t < names.size(); ++t) {
    const auto& name = names[t].first;
    std::vector<double> got, want;
    const std::size_t size = names[t].second.size(), count = per_tensor ? std::min(per_tensor, size) : size;
    for (std::size_t j = 0; j < count; ++j) {
      std::size_t i = (j * size / count + t) % size;  // the offset by t varies which rows and columns are hit
      want.push_back(central_difference([&](double h) {
        auto model = fresh();
        model->parameters()[t].second[i] += h;
        return loss(*model, input);
      }));
      got.push_back(analytic.at(name)[i]);
    }
    EXPECT_LT(relative_error(got, want), 1e-6) << name;
  }
}

const WorkloadSpec kSmall{.layers = 2, .hidden = 8, .heads = 2, .ffn = 12, .seq = 5, .micro_batch = 2, .seed = 7};

// A middle stage holding one layer: L = Σ y·r for a fixed random r, so dL/dy = r.
TEST(GradCheck, WholeLayer) {
  WorkloadSpec spec = kSmall;
  spec.layers = 1;
  const std::size_t size = std::size_t(spec.micro_batch * spec.seq * spec.hidden);
  auto x = random_vector(size, 1), r = random_vector(size, 2);
  auto fresh = [&] { return std::make_unique<StageModel<double>>(spec, 0, 1, false, false); };
  auto loss = [&](StageModel<double>& m, const std::vector<double>& in) { return dot(m.forward(0, in), r); };
  auto model = fresh();
  model->forward(0, x);
  auto dx = model->backward_input(0, r);
  model->backward_weight(0);
  check_gradients(fresh, loss, x, dx, gradients_of<double>({model.get()}), 0);
}

// A last stage of two layers, from its input through the final norm to the loss.
TEST(GradCheck, WholeStageModel) {
  const std::size_t size = std::size_t(kSmall.micro_batch * kSmall.seq * kSmall.hidden);
  auto x = random_vector(size, 3);
  auto fresh = [&] { return std::make_unique<StageModel<double>>(kSmall, 0, 2, false, true); };
  auto loss = [&](StageModel<double>& m, const std::vector<double>& in) { return m.forward(3, in).at(0); };
  auto model = fresh();
  model->forward(3, x);
  auto dx = model->backward_input(3, {});
  model->backward_weight(3);
  check_gradients(fresh, loss, x, dx, gradients_of<double>({model.get()}), 0);
}

// The default-size model, first stage to last: a sample of the weights.
TEST(GradCheck, DefaultModelSampledWeights) {
  WorkloadSpec spec;
  auto fresh = [&] { return std::make_unique<StageModel<double>>(spec, 0, spec.layers, true, true); };
  auto loss = [&](StageModel<double>& m, const std::vector<double>&) { return m.forward(2, {}).at(0); };
  auto model = fresh();
  model->forward(2, {});
  EXPECT_TRUE(model->backward_input(2, {}).empty());
  model->backward_weight(2);
  check_gradients(fresh, loss, {}, {}, gradients_of<double>({model.get()}), 5);
}

// One F, I or W of one stage for one micro-batch.
struct Pass {
  char op;
  int stage, mb;
};

// Runs `order` over stages of `sizes` layers (handing activations and gradients between them) and
// returns the losses and all gradients.
template <class T>
struct Pipeline {
  std::vector<std::unique_ptr<StageModel<T>>> stages;
  std::map<std::pair<int, int>, std::vector<T>> activation, gradient;  // (stage, mb) -> its input / output grad

  Pipeline(const WorkloadSpec& spec, const std::vector<int>& sizes) {
    int first = 0;
    for (std::size_t s = 0; s < sizes.size(); ++s) {
      stages.push_back(std::make_unique<StageModel<T>>(spec, first, sizes[s], s == 0, s + 1 == sizes.size()));
      first += sizes[s];
    }
  }
  void run(const Pass& p) {
    auto& stage = *stages[std::size_t(p.stage)];
    if (p.op == 'F') {
      auto out = stage.forward(p.mb, activation[{p.stage, p.mb}]);
      activation.erase({p.stage, p.mb});
      if (p.stage + 1 < int(stages.size())) activation[{p.stage + 1, p.mb}] = std::move(out);
    } else if (p.op == 'I') {
      auto grad = stage.backward_input(p.mb, gradient[{p.stage, p.mb}]);
      gradient.erase({p.stage, p.mb});
      if (p.stage > 0) gradient[{p.stage - 1, p.mb}] = std::move(grad);
    } else {
      stage.backward_weight(p.mb);
    }
  }
  std::vector<T> losses(int microbatches) const {
    std::vector<T> out;
    for (int mb = 0; mb < microbatches; ++mb) out.push_back(stages.back()->loss(mb));
    return out;
  }
  Grads gradients() const {
    std::vector<const StageModel<T>*> raw;
    for (auto& s : stages) raw.push_back(s.get());
    return gradients_of<T>(raw);
  }
  std::size_t saved() const {
    std::size_t n = 0;
    for (auto& s : stages) n += s->saved_microbatches();
    return n;
  }
};

// Micro-batch by micro-batch: F down the stages, I back up, then W everywhere.
std::vector<Pass> sequential_order(int stages, int microbatches) {
  std::vector<Pass> order;
  for (int mb = 0; mb < microbatches; ++mb) {
    for (int s = 0; s < stages; ++s) order.push_back({'F', s, mb});
    for (int s = stages - 1; s >= 0; --s) order.push_back({'I', s, mb});
    for (int s = 0; s < stages; ++s) order.push_back({'W', s, mb});
  }
  return order;
}

// A random order that respects the dependencies: F after the previous stage's F, I after this stage's F
// and the next stage's I, W after this stage's I.
std::vector<Pass> scrambled_order(int stages, int microbatches, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<int> f(std::size_t(microbatches), 0), i(std::size_t(microbatches), stages);
  std::vector<std::vector<bool>> w_done(std::size_t(stages), std::vector<bool>(std::size_t(microbatches), false));
  std::vector<Pass> order;
  for (;;) {
    std::vector<Pass> ready;
    for (int mb = 0; mb < microbatches; ++mb) {
      auto m = std::size_t(mb);
      if (f[m] < stages) ready.push_back({'F', f[m], mb});
      if (f[m] == stages && i[m] > 0) ready.push_back({'I', i[m] - 1, mb});
      for (int s = i[m]; s < stages; ++s)
        if (!w_done[std::size_t(s)][m]) ready.push_back({'W', s, mb});
    }
    if (ready.empty()) break;
    Pass p = ready[std::size_t(gen() % ready.size())];
    auto m = std::size_t(p.mb);
    if (p.op == 'F') ++f[m];
    if (p.op == 'I') --i[m];
    if (p.op == 'W') w_done[std::size_t(p.stage)][m] = true;
    order.push_back(p);
  }
  return order;
}

template <class T>
std::pair<std::vector<T>, Grads> run(const WorkloadSpec& spec, const std::vector<int>& sizes,
                                     const std::vector<Pass>& order, int microbatches) {
  Pipeline<T> pipeline(spec, sizes);
  for (const auto& p : order) pipeline.run(p);
  EXPECT_EQ(pipeline.saved(), 0u);
  return {pipeline.losses(microbatches), pipeline.gradients()};
}

void expect_close(const Grads& got, const Grads& want, double tolerance) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, g] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    EXPECT_LE(relative_error(got.at(name), g), tolerance) << name;
  }
}

constexpr int kMicrobatches = 5;

// Same weights, same kernels, same inputs: every stage computes the unsplit model's bits, and with W in the
// same order the gradients are identical too, not merely within 1e-12.
TEST(Split, AnySplitGivesTheUnsplitModelsBits) {
  WorkloadSpec spec;
  auto [losses, grads] = run<double>(spec, {4}, sequential_order(1, kMicrobatches), kMicrobatches);
  for (auto sizes : std::vector<std::vector<int>>{{2, 2}, {1, 3}, {3, 1}, {1, 1, 1, 1}, {0, 4}, {1, 2, 1}}) {
    auto [l, g] = run<double>(spec, sizes, sequential_order(int(sizes.size()), kMicrobatches), kMicrobatches);
    EXPECT_EQ(l, losses);
    EXPECT_EQ(g, grads);
  }
}

TEST(Split, ScrambledOrderGivesSameLossesAndGradients) {
  WorkloadSpec spec;
  auto [losses, grads] = run<double>(spec, {4}, sequential_order(1, kMicrobatches), kMicrobatches);
  for (auto sizes : std::vector<std::vector<int>>{{2, 2}, {1, 1, 1, 1}}) {
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      auto order = scrambled_order(int(sizes.size()), kMicrobatches, seed);
      // The order really interleaves: some W runs after a later micro-batch's F on the same stage.
      bool interleaved = false;
      for (std::size_t a = 0; a < order.size(); ++a)
        for (std::size_t b = a + 1; b < order.size(); ++b)
          interleaved |=
              order[a].op == 'F' && order[b].op == 'W' && order[a].stage == order[b].stage && order[a].mb > order[b].mb;
      EXPECT_TRUE(interleaved);
      auto [l, g] = run<double>(spec, sizes, order, kMicrobatches);
      EXPECT_EQ(l, losses);
      expect_close(g, grads, 1e-12);
    }
  }
}

TEST(Split, FloatSplitKeepsTheLossBits) {
  WorkloadSpec spec;
  auto [losses, grads] = run<float>(spec, {4}, sequential_order(1, kMicrobatches), kMicrobatches);
  auto [l, g] = run<float>(spec, {1, 3}, scrambled_order(2, kMicrobatches, 9), kMicrobatches);
  EXPECT_EQ(l, losses);
  expect_close(g, grads, 1e-5);
}

// Weights depend on (seed, layer) only.
TEST(Split, WeightsDependOnlyOnSeedAndLayer) {
  WorkloadSpec spec;
  StageModel<double> whole(spec, 0, 4, true, true), tail(spec, 2, 2, false, true);
  std::map<std::string, std::vector<double>> all;
  for (auto& [name, w] : whole.parameters()) all[name].assign(w.begin(), w.end());
  for (auto& [name, w] : tail.parameters()) EXPECT_EQ(all.at(name), std::vector<double>(w.begin(), w.end())) << name;
  spec.seed = 2;
  StageModel<double> other(spec, 0, 4, true, true);
  EXPECT_NE(other.parameters()[1].second[0], whole.parameters()[1].second[0]);
}

// B is I then W, and deferring every W to the end (in the same order) changes nothing.
TEST(Workload, BackwardIsInputThenWeight) {
  WorkloadSpec spec;
  StageModel<double> fused(spec, 0, 4, true, true), split(spec, 0, 4, true, true), deferred(spec, 0, 4, true, true);
  for (int mb = 0; mb < 3; ++mb) {
    fused.forward(mb, {});
    EXPECT_TRUE(fused.backward(mb, {}).empty());
    split.forward(mb, {});
    split.backward_input(mb, {});
    split.backward_weight(mb);
    deferred.forward(mb, {});
    deferred.backward_input(mb, {});
  }
  EXPECT_EQ(deferred.saved_microbatches(), 3u);
  for (int mb = 0; mb < 3; ++mb) deferred.backward_weight(mb);
  EXPECT_EQ(fused.gradients(), split.gradients());
  EXPECT_EQ(fused.gradients(), deferred.gradients());
  for (int mb = 0; mb < 3; ++mb) EXPECT_EQ(fused.loss(mb), deferred.loss(mb));
}

TEST(Workload, DeterministicAcrossRuns) {
  WorkloadSpec spec;
  auto order = scrambled_order(2, kMicrobatches, 4);
  EXPECT_EQ((run<double>(spec, {2, 2}, order, kMicrobatches)), (run<double>(spec, {2, 2}, order, kMicrobatches)));
  EXPECT_EQ((run<float>(spec, {2, 2}, order, kMicrobatches)), (run<float>(spec, {2, 2}, order, kMicrobatches)));
}

TEST(Workload, ShapesAndBookkeeping) {
  WorkloadSpec spec;
  const std::size_t size = std::size_t(spec.micro_batch * spec.seq * spec.hidden);
  StageModel<double> first(spec, 0, 2, true, false), last(spec, 2, 2, false, true);
  auto act = first.forward(0, {});
  EXPECT_EQ(act.size(), size);
  auto out = last.forward(0, act);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], last.loss(0));
  EXPECT_GT(out[0], 0.0);
  auto grad = last.backward_input(0, {});
  EXPECT_EQ(grad.size(), size);
  EXPECT_EQ(last.saved_microbatches(), 1u);
  last.backward_weight(0);
  EXPECT_EQ(last.saved_microbatches(), 0u);
  EXPECT_EQ(last.loss(0), out[0]);  // the loss outlives the micro-batch's saved tensors
  EXPECT_TRUE(first.backward_input(0, grad).empty());
  first.backward_weight(0);
  auto names = last.gradients();
  ASSERT_EQ(names.size(), 19u);
  EXPECT_EQ(names.front().first, "layer2.attn_norm");
  EXPECT_EQ(names[8].first, "layer2.w_down");
  EXPECT_EQ(names.back().first, "final_norm");
  last.zero_gradients();
  for (auto& [name, g] : last.gradients())
    for (double x : g) ASSERT_EQ(x, 0.0) << name;
}

void expect_error(const std::function<void()>& call, Error::Kind kind) {
  try {
    call();
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
  }
}

TEST(Workload, RefusesMisuse) {
  WorkloadSpec spec;
  const auto internal = Error::Kind::Internal;
  StageModel<double> first(spec, 0, 2, true, false), last(spec, 2, 2, false, true);
  expect_error([&] { first.backward_input(0, {}); }, internal);  // I before F
  expect_error([&] { first.backward_weight(0); }, internal);     // W before F
  auto act = first.forward(0, {});
  expect_error([&] { first.forward(0, {}); }, internal);                 // F twice
  expect_error([&] { first.backward_weight(0); }, internal);             // W before I
  expect_error([&] { first.backward_input(0, {1.0, 2.0}); }, internal);  // wrong gradient size
  expect_error([&] { first.loss(0); }, internal);                        // not the last stage
  expect_error([&] { last.loss(0); }, internal);                         // no forward yet
  expect_error([&] { last.forward(0, {1.0}); }, internal);               // wrong input size
  expect_error([&] { first.forward(-1, {}); }, internal);
  last.forward(0, act);
  last.backward_input(0, {});
  expect_error([&] { last.backward_input(0, {}); }, internal);  // I twice
  last.backward_weight(0);
  expect_error([&] { last.backward_weight(0); }, internal);  // W twice
  expect_error([&] { StageModel<double>(spec, 3, 2, false, true); }, internal);
  WorkloadSpec bad = spec;
  bad.heads = 5;
  expect_error([&] { StageModel<double>(bad, 0, 4, true, true); }, Error::Kind::Input);
  bad = spec;
  bad.seq = 0;
  expect_error([&] { validate(bad); }, Error::Kind::Input);
}

// ---- Mixture of experts ----

const WorkloadSpec kMoe{.layers = 2,
                        .hidden = 8,
                        .heads = 2,
                        .seq = 5,
                        .micro_batch = 2,
                        .seed = 11,
                        .experts = 4,
                        .experts_per_token = 2,
                        .expert_ffn = 6};

// A last stage of two MoE layers, input to loss. Top-k routing is piecewise constant, so every
// finite-difference evaluation first checks that no token changed its experts.
TEST(MoeGradCheck, WholeStageModel) {
  const std::size_t size = std::size_t(kMoe.micro_batch * kMoe.seq * kMoe.hidden);
  auto x = random_vector(size, 5);
  auto fresh = [&] { return std::make_unique<StageModel<double>>(kMoe, 0, 2, false, true); };
  auto model = fresh();
  model->forward(3, x);
  std::vector<std::vector<int>> routing{model->routed_experts(3, 0), model->routed_experts(3, 1)};
  std::set<int> used(routing[0].begin(), routing[0].end());
  EXPECT_EQ(used.size(), 4u);  // every expert gets rows
  int rerouted = 0;
  auto loss = [&](StageModel<double>& m, const std::vector<double>& in) {
    double l = m.forward(3, in).at(0);
    rerouted += m.routed_experts(3, 0) != routing[0] || m.routed_experts(3, 1) != routing[1];
    return l;
  };
  auto dx = model->backward_input(3, {});
  model->backward_weight(3);
  auto grads = gradients_of<double>({model.get()});
  EXPECT_TRUE(grads.count("layer1.router") && grads.count("layer0.expert3.w_down"));
  check_gradients(fresh, loss, x, dx, grads, 0);
  EXPECT_EQ(rerouted, 0);
}

// Each rank's passes as (op, local index); both ranks run the same interleaved order in lockstep.
const std::vector<std::pair<char, int>> kLockstep{{'F', 0}, {'F', 1}, {'I', 0}, {'F', 2},
                                                  {'W', 0}, {'I', 1}, {'I', 2}, {'W', 2}, {'W', 1}};

void run_passes(StageModel<double>& model, int first_mb, std::vector<double>& losses) {
  for (auto [op, i] : kLockstep) {
    int mb = first_mb + i;
    if (op == 'F') losses[std::size_t(mb)] = model.forward(mb, {}).at(0);
    if (op == 'I') model.backward_input(mb, {});
    if (op == 'W') model.backward_weight(mb);
  }
}

// EP = 2: rank r runs micro-batches 3r..3r+2 and holds experts 2r, 2r+1. Against one EP = 1 model running
// micro-batches 0..5: equal losses bit for bit, each expert's gradient on its owner, and the two ranks'
// other gradients summed, to 1e-12.
TEST(Moe, ExpertParallelMatchesOneProcess) {
  const int ranks = 2, per_rank = 3;
  WorkloadSpec spec = kMoe;
  spec.seq = 8;
  std::vector<double> want(ranks * per_rank), got(ranks * per_rank);
  StageModel<double> single(spec, 0, spec.layers, true, true);
  for (int r = 0; r < ranks; ++r) run_passes(single, r * per_rank, want);

  ThreadAllToAll<double> all_to_all(ranks);
  std::vector<std::unique_ptr<StageModel<double>>> models;
  for (int r = 0; r < ranks; ++r) {
    WorkloadSpec s = spec;
    s.ep = ranks;
    s.ep_rank = r;
    models.push_back(std::make_unique<StageModel<double>>(s, 0, s.layers, true, true, all_to_all.rank(r)));
  }
  std::vector<std::string> failures(ranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      try {
        run_passes(*models[std::size_t(r)], r * per_rank, got);
      } catch (const std::exception& e) {
        failures[std::size_t(r)] = e.what();
        all_to_all.leave();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < ranks; ++r) ASSERT_EQ(failures[std::size_t(r)], "") << "rank " << r;
  EXPECT_EQ(got, want);
  EXPECT_GT(all_to_all.crossed, 0u);

  Grads sum, want_grads = gradients_of<double>({&single});
  for (int r = 0; r < ranks; ++r)
    for (auto& [name, g] : models[std::size_t(r)]->gradients()) {
      auto at = name.find(".expert");
      auto& s = sum[name];
      if (at != std::string::npos) {
        EXPECT_EQ(std::stoi(name.substr(at + 7)) / 2, r) << name << " on the wrong rank";
        EXPECT_TRUE(s.empty()) << name << " held by two ranks";
      }
      s.resize(g.size(), 0.0);
      for (std::size_t i = 0; i < g.size(); ++i) s[i] += g[i];
    }
  expect_close(sum, want_grads, 1e-12);
  // An expert's weights are the same whichever rank holds it.
  std::map<std::string, std::vector<double>> weights;
  for (auto& [name, w] : single.parameters()) weights[name].assign(w.begin(), w.end());
  for (auto& m : models)
    for (auto& [name, w] : m->parameters()) EXPECT_EQ(weights.at(name), std::vector<double>(w.begin(), w.end()));
}

TEST(Moe, AnySplitGivesTheUnsplitModelsBits) {
  WorkloadSpec spec = kMoe;
  spec.layers = 4;
  auto [losses, grads] = run<double>(spec, {4}, sequential_order(1, kMicrobatches), kMicrobatches);
  for (auto sizes : std::vector<std::vector<int>>{{2, 2}, {1, 3}, {1, 1, 1, 1}}) {
    auto [l, g] = run<double>(spec, sizes, sequential_order(int(sizes.size()), kMicrobatches), kMicrobatches);
    EXPECT_EQ(l, losses);
    EXPECT_EQ(g, grads);
  }
  auto [l, g] = run<double>(spec, {2, 2}, scrambled_order(2, kMicrobatches, 5), kMicrobatches);
  EXPECT_EQ(l, losses);
  expect_close(g, grads, 1e-12);
  auto [lf, gf] = run<float>(spec, {4}, sequential_order(1, kMicrobatches), kMicrobatches);
  auto [lf2, gf2] = run<float>(spec, {1, 3}, scrambled_order(2, kMicrobatches, 6), kMicrobatches);
  EXPECT_EQ(lf, lf2);
}

TEST(Moe, NamesAndValidation) {
  WorkloadSpec spec = kMoe;
  spec.ep = 2;
  spec.ep_rank = 1;
  auto identity = [](std::vector<std::vector<double>> b) { return b; };
  StageModel<double> model(spec, 1, 1, false, true, identity);
  std::vector<std::string> names;
  for (auto& [name, g] : model.gradients()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"layer1.attn_norm", "layer1.wq", "layer1.wk", "layer1.wv", "layer1.wo",
                                             "layer1.mlp_norm", "layer1.router", "layer1.expert2.w_gate",
                                             "layer1.expert2.w_up", "layer1.expert2.w_down", "layer1.expert3.w_gate",
                                             "layer1.expert3.w_up", "layer1.expert3.w_down", "final_norm"}));
  const auto input = Error::Kind::Input;
  auto expect_input_error = [&](WorkloadSpec bad, const std::string& field) {
    try {
      validate(bad);
      ADD_FAILURE() << "no throw for " << field;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), input) << e.what();
      EXPECT_NE(std::string(e.what()).find(field + " = "), std::string::npos) << e.what();
    }
  };
  WorkloadSpec bad = kMoe;
  bad.ep = 3;  // 4 experts over 3 ranks
  expect_input_error(bad, "experts");
  bad = kMoe;
  bad.experts_per_token = 5;
  expect_input_error(bad, "experts_per_token");
  bad.experts_per_token = 0;
  expect_input_error(bad, "experts_per_token");
  bad = kMoe;
  bad.expert_ffn = 0;
  expect_input_error(bad, "expert_ffn");
  bad = kMoe;
  bad.experts = -1;
  expect_input_error(bad, "experts");
  bad = kMoe;
  bad.ep_rank = 1;
  expect_input_error(bad, "ep_rank");
  bad.ep = 0;
  expect_input_error(bad, "ep");
  // EP > 1 needs an exchange; a wrong-shaped exchange is caught.
  expect_error([&] { StageModel<double>(spec, 0, 1, true, true); }, Error::Kind::Internal);
  StageModel<double> broken(spec, 0, 1, true, true, [](std::vector<std::vector<double>>) {
    return std::vector<std::vector<double>>(1);
  });
  expect_error([&] { broken.forward(0, {}); }, Error::Kind::Internal);
  StageModel<double> dense(WorkloadSpec{}, 0, 1, true, true);
  dense.forward(0, {});
  expect_error([&] { dense.routed_experts(0, 0); }, Error::Kind::Internal);
}

}  // namespace
}  // namespace pipesim
