// The programs built beside `pipesim` that hold what most commands do not need: `pipesim-cuda` (the CUDA
// device, for `run`) and `pipesim-serve` (the web server and its page, for `serve`). Keeping their
// libraries out of `pipesim` keeps every other command's start at a few milliseconds and megabytes
// (docs/performance.md §5).
#pragma once

namespace pipesim::cli {

// Replaces this process with `program` from this executable's folder, with the same arguments. Returns
// when there is no such program; warns and returns when it could not be started.
void exec_sibling(const char* program, char** argv);

}  // namespace pipesim::cli
