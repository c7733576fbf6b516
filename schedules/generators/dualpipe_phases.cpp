// Transcription of DualPipe's step() compute order (dualpipe.py / dualpipev.py). Names follow the code:
// nF0, nF0F1, nB1W1F1, nF0B1F1B0, nB1F1B0, nB1B0, nWB0, nW. A backward "with zero bubble" is an I whose
// W waits in a FIFO (WeightGradStore) until a later W phase pops it; other backwards are full B.
#include "schedules/generators/dualpipe_phases.hpp"

#include <deque>

#include "common/error.hpp"

namespace pipesim {
namespace {

class RankProgram {
 public:
  // Appends to `program` (start_schedule() reserved room for it).
  RankProgram(DualPipeChunk phase0, DualPipeChunk phase1, std::vector<Action>& program)
      : chunk_{phase0, phase1}, program_(program) {}

  Pass next_forward(int phase) { return {Op::F, chunk_[phase].stage, chunk_[phase].first_microbatch + forwards_[phase]++}; }
  Pass next_backward(int phase, bool zero_bubble) {
    Pass pass{zero_bubble ? Op::I : Op::B, chunk_[phase].stage, chunk_[phase].first_microbatch + backwards_[phase]++};
    if (zero_bubble) weights_.push_back(pass);
    return pass;
  }
  void forward(int phase) { emit(next_forward(phase)); }
  void backward(int phase, bool zero_bubble = false) { emit(next_backward(phase, zero_bubble)); }
  void forward_backward(int forward_phase, int backward_phase) {
    auto f = next_forward(forward_phase);
    program_.push_back(Action::overlap(f, next_backward(backward_phase, false)));
  }
  void weight() {
    if (weights_.empty()) throw Error("dualpipe: W phase with no pending weight gradient", Error::Kind::Internal);
    emit({Op::W, weights_.front().stage, weights_.front().microbatch});
    weights_.pop_front();
  }
  void finish() const {
    if (!weights_.empty()) throw Error("dualpipe: weight gradients left pending", Error::Kind::Internal);
  }

 private:
  void emit(Pass pass) { program_.push_back(Action::single(pass.op, pass.stage, pass.microbatch)); }
  DualPipeChunk chunk_[2];
  int forwards_[2]{}, backwards_[2]{};
  std::deque<Pass> weights_;  // FIFO, as WeightGradStore's queue
  std::vector<Action>& program_;
};

}  // namespace

void dualpipe_program(int n, int h, int chunks, DualPipeChunk phase0, DualPipeChunk phase1,
                      std::vector<Action>& program) {
  RankProgram p(phase0, phase1, program);
  bool middle = h == n - 1;  // the rank where the two directions meet (DualPipeV: the last rank)

  for (int i = 0; i < (n - h - 1) * 2; ++i) p.forward(0);  // nF0
  for (int i = 0; i < h + 1; ++i) {                        // nF0F1
    p.forward(0);
    p.forward(1);
  }
  for (int i = 0; i < n - h - 1; ++i) {  // nB1W1F1, zero bubble
    p.backward(1, true);
    p.weight();
    p.forward(1);
  }
  for (int i = 0; i < chunks - 2 * n + h + 1; ++i) {  // nF0B1F1B0, the main overlapped phase
    if (i == 0 && middle) {
      p.forward(0);  // not overlapped, "to further reduce bubble size"
      p.backward(1);
    } else {
      p.forward_backward(0, 1);
    }
    p.forward_backward(1, 0);
  }
  for (int i = 0; i < n - h - 1; ++i) {  // nB1F1B0
    p.backward(1);
    p.forward_backward(1, 0);
  }
  bool zero_bubble = false;  // nB1B0: the second half of the chunks use zero bubble
  for (int i = 0; i < h + 1; ++i) {
    if (i == (h + 1) / 2 && h % 2 == 1) zero_bubble = true;
    p.backward(1, zero_bubble);
    if (i == (h + 1) / 2 && h % 2 == 0) zero_bubble = true;
    p.backward(0, zero_bubble);
  }
  for (int i = 0; i < n - h - 1; ++i) {  // nWB0, zero bubble
    p.weight();
    p.backward(0, true);
  }
  for (int i = 0; i < h + 1; ++i) p.weight();  // nW
  p.finish();
}

}  // namespace pipesim
