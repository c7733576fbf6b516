// A Timeline as a Chrome trace (Trace Event Format; opens in Perfetto and chrome://tracing): one process
// per rank, one thread per stream (compute; point-to-point transfers on as many lanes as overlap), complete
// events named by the action text with stage, micro-batch and op in args, flow arrows from each transfer
// to the RECV that takes it, and a counter track of live activations per rank. Byte-identical for
// identical input; times in microseconds with nanosecond precision.
#pragma once

#include <string>

#include "traces/timeline.hpp"

namespace pipesim {

std::string to_chrome_trace(const Timeline& timeline);

}  // namespace pipesim
