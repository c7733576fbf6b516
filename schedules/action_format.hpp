// fmt formatters for passes and actions: the text to_string() returns ("0F3", "2SEND_F1",
// "(0F3;7B1)OVERLAP_F_B"), written straight into whatever fmt writes to. Trace writers use them to name a
// million actions without a string each; to_string() is made of them.
#pragma once

#include <fmt/format.h>

#include "schedules/action.hpp"

template <>
struct fmt::formatter<pipesim::Pass> {
  constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }
  template <class Context>
  auto format(const pipesim::Pass& pass, Context& ctx) const {
    auto out = fmt::format_to(ctx.out(), "{}", pass.stage);
    auto name = pipesim::op_name(pass.op);
    out = std::copy(name.begin(), name.end(), out);
    return fmt::format_to(out, "{}", pass.microbatch);
  }
};

template <>
struct fmt::formatter<pipesim::Action> {
  constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }
  template <class Context>
  auto format(const pipesim::Action& action, Context& ctx) const {
    if (action.op == pipesim::Op::OverlapFB)
      return fmt::format_to(ctx.out(), "({};{})OVERLAP_F_B", action.pass[0], action.pass[1]);
    return fmt::format_to(ctx.out(), "{}", action.pass[0]);
  }
};
