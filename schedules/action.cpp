// Text form of actions: printing and the exact inverse parser.
#include "schedules/action.hpp"

#include <array>
#include <charconv>

#include <fmt/format.h>

#include "common/error.hpp"
#include "schedules/action_format.hpp"

namespace pipesim {
namespace {

constexpr std::array<std::pair<Op, std::string_view>, 9> kNames{{
    {Op::SendF, "SEND_F"},
    {Op::RecvF, "RECV_F"},
    {Op::SendB, "SEND_B"},
    {Op::RecvB, "RECV_B"},
    {Op::OverlapFB, "OVERLAP_F_B"},
    {Op::F, "F"},
    {Op::I, "I"},
    {Op::W, "W"},
    {Op::B, "B"},
}};

// Reads a non-negative decimal integer at the front of `text`, advancing it.
bool take_number(std::string_view& text, std::int32_t& value) {
  auto* first = text.data();
  auto* last = text.data() + text.size();
  if (first == last || *first < '0' || *first > '9') return false;
  auto [end, ec] = std::from_chars(first, last, value);
  if (ec != std::errc()) return false;
  text.remove_prefix(static_cast<std::size_t>(end - first));
  return true;
}

Pass parse_pass(std::string_view whole, std::string_view text) {
  Pass pass;
  auto fail = [&](std::string_view why) {
    return Error(fmt::format("invalid action '{}': {} (expected STAGE OP MICROBATCH such as 0F3, 1I2, "
                             "2SEND_F1, or (0F3;7B1)OVERLAP_F_B)",
                             whole, why));
  };
  std::int32_t stage = 0;
  if (!take_number(text, stage)) throw fail("it must start with a stage number");
  if (stage >= kMaxStages) throw fail(fmt::format("stage {} is past the largest stage number, {}", stage, kMaxStages - 1));
  pass.stage = stage;
  bool found = false;
  for (auto& [op, name] : kNames) {
    if (op != Op::OverlapFB && text.starts_with(name)) {
      pass.op = op;
      text.remove_prefix(name.size());
      found = true;
      break;
    }
  }
  if (!found) throw fail("unknown op; ops are F, I, W, B, SEND_F, RECV_F, SEND_B, RECV_B");
  if (!take_number(text, pass.microbatch)) throw fail("the op must be followed by a micro-batch number");
  if (!text.empty()) throw fail(fmt::format("unexpected '{}' after the micro-batch", text));
  return pass;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view op_name(Op op) {
  // In Op's order (the table above is in the parser's: longest names first).
  constexpr std::string_view kByOp[] = {"F", "I", "W", "B", "OVERLAP_F_B", "SEND_F", "RECV_F", "SEND_B", "RECV_B"};
  auto k = static_cast<std::size_t>(op);
  return k < std::size(kByOp) ? kByOp[k] : "?";
}

std::string to_string(const Pass& pass) { return fmt::format("{}", pass); }

std::string to_string(const Action& action) { return fmt::format("{}", action); }

Action parse_action(std::string_view raw) {
  auto text = trim(raw);
  if (text.empty()) throw Error("invalid action '': empty text");
  if (text.front() != '(') {
    auto pass = parse_pass(text, text);
    return Action::single(pass.op, pass.stage, pass.microbatch);
  }
  auto close = text.find(')');
  auto semi = text.find(';');
  if (close == std::string_view::npos || semi == std::string_view::npos || semi > close ||
      text.substr(close + 1) != "OVERLAP_F_B")
    throw Error(fmt::format("invalid action '{}': an overlapped pair is written (0F3;7B1)OVERLAP_F_B", text));
  auto forward = parse_pass(text, trim(text.substr(1, semi - 1)));
  auto backward = parse_pass(text, trim(text.substr(semi + 1, close - semi - 1)));
  if (forward.op != Op::F || !is_backward(backward.op))
    throw Error(fmt::format("invalid action '{}': an overlapped pair is a forward (F) then a backward (B or I)",
                            text));
  return Action::overlap(forward, backward);
}

}  // namespace pipesim
