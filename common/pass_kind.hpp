// The three kinds of work one micro-batch does on one stage: forward (F), backward for input (I) and
// backward for weights (W). The schedule IR's Op adds B (I and W fused), overlapped pairs and
// communication on top; the accounting and the cost model count FLOPs, bytes and time per PassKind.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace pipesim {

enum class PassKind : std::uint8_t { F, I, W };
inline constexpr std::array<PassKind, 3> kPassKinds{PassKind::F, PassKind::I, PassKind::W};

// One value per pass kind, indexed by PassKind.
template <class T>
struct PerPass {
  std::array<T, 3> values{};
  T& operator[](PassKind kind) { return values[static_cast<std::size_t>(kind)]; }
  const T& operator[](PassKind kind) const { return values[static_cast<std::size_t>(kind)]; }
  T sum() const { return values[0] + values[1] + values[2]; }
};

}  // namespace pipesim
