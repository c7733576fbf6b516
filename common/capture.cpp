// The per-thread capture (see capture.hpp).
#include "common/capture.hpp"

namespace pipesim {
namespace {
thread_local Capture* installed = nullptr;
}  // namespace

Capture::Capture(std::map<std::string, std::string> in) : inputs(std::move(in)), previous_(installed) { installed = this; }
Capture::~Capture() { installed = previous_; }
Capture* Capture::current() { return installed; }

}  // namespace pipesim
