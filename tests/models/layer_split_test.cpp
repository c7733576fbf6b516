// The one layer-split policy the simulator's plans and the runtime's stages share: an even split with the
// remainder centred on the middle stages (the first stage also holds the embedding, the last the head).
#include <numeric>

#include <gtest/gtest.h>

#include "common/error.hpp"
#include "models/layer_split.hpp"

namespace pipesim {
namespace {

TEST(LayerSplit, EvenWithTheRemainderOnTheMiddleStages) {
  EXPECT_EQ(even_layer_split(8, 4), (std::vector<int>{2, 2, 2, 2}));
  EXPECT_EQ(even_layer_split(10, 4), (std::vector<int>{2, 3, 3, 2}));
  EXPECT_EQ(even_layer_split(9, 4), (std::vector<int>{2, 3, 2, 2}));  // rest 1 at (4 - 1) / 2 = 1
  EXPECT_EQ(even_layer_split(7, 4), (std::vector<int>{2, 2, 2, 1}));  // rest 3 from (4 - 3) / 2 = 0
  EXPECT_EQ(even_layer_split(3, 4), (std::vector<int>{1, 1, 1, 0}));
  // DeepSeek-V3: 61 layers on 16 stages, 3 each and one more on stages 1..13.
  auto ds = even_layer_split(61, 16);
  EXPECT_EQ(std::accumulate(ds.begin(), ds.end(), 0), 61);
  EXPECT_EQ(ds.front(), 3);
  EXPECT_EQ(ds.back(), 3);
  for (int k = 1; k <= 13; ++k) EXPECT_EQ(ds[static_cast<std::size_t>(k)], 4) << k;
  for (int layers = 0; layers < 40; ++layers)
    for (int stages = 1; stages < 12; ++stages) {
      auto split = even_layer_split(layers, stages);
      ASSERT_EQ(split.size(), static_cast<std::size_t>(stages));
      EXPECT_EQ(std::accumulate(split.begin(), split.end(), 0), layers);
      auto [lo, hi] = std::minmax_element(split.begin(), split.end());
      EXPECT_LE(*hi - *lo, 1);
      EXPECT_EQ(split.back(), layers / stages);  // the last stage (with the head) never takes the remainder
    }
  EXPECT_THROW(even_layer_split(4, 0), Error);
}

}  // namespace
}  // namespace pipesim
