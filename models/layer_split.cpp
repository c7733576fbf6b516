// The one layer-split policy (see layer_split.hpp).
#include "models/layer_split.hpp"

#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim {

std::vector<int> even_layer_split(int layers, int stages) {
  if (stages < 1) throw Error(fmt::format("layer split: stages is {}; it must be at least 1", stages));
  if (layers < 0) throw Error(fmt::format("layer split: layers is {}; it must be non-negative", layers));
  std::vector<int> counts(static_cast<std::size_t>(stages), layers / stages);
  int rest = layers % stages, first = (stages - rest) / 2;
  for (int i = 0; i < rest; ++i) counts[static_cast<std::size_t>(first + i)] += 1;
  return counts;
}

}  // namespace pipesim
