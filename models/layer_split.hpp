// How a model's transformer layers are cut into the stages a micro-batch crosses: one policy for the
// simulator's plans and the runtime's workload alike.
#pragma once

#include <vector>

namespace pipesim {

// [k] -> transformer layers of the k-th stage along a route of `stages` stages: an even split, the
// remainder on the middle stages, because the first stage also holds the embedding and the last the
// output head (and MTP), as DeepSeek-V3 places them (docs/cost-model.md). Throws Error when stages < 1.
std::vector<int> even_layer_split(int layers, int stages);

}  // namespace pipesim
