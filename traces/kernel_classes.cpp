// Kernel classification by the rule table (see kernel_classes.hpp).
#include "traces/kernel_classes.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/json.hpp"
#include "common/presets.hpp"

namespace pipesim {

KernelRules parse_kernel_rules(std::string_view text, const std::string& source) {
  auto doc = parse_json(text, source);
  JsonReader root(doc, source);
  root.expect_object();
  root.only_keys({"rules", "comment"});
  KernelRules out;
  out.source = source;
  for (auto& r : root.child("rules").elements()) {
    r.expect_object();
    r.only_keys({"class", "pattern", "activity", "comment"});
    KernelRule rule;
    rule.op_class = r.required<std::string>("class");
    try {
      class_group(rule.op_class);
    } catch (const Error& e) {
      r.child("class").fail(e.what());
    }
    rule.activity = r.optional<std::string>("activity", "kernel");
    if (rule.activity != "kernel" && rule.activity != "memcpy" && rule.activity != "memset")
      r.child("activity").fail(fmt::format("'{}' is not one of kernel, memcpy, memset", rule.activity));
    rule.pattern = r.required<std::string>("pattern");
    try {
      rule.regex = std::regex(rule.pattern, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      r.child("pattern").fail(fmt::format("not a regular expression ({}): {}", e.what(), rule.pattern));
    }
    out.rules.push_back(std::move(rule));
  }
  if (out.rules.empty()) root.child("rules").fail("no rules");
  return out;
}

KernelRules default_kernel_rules() {
  for (auto& file : kernel_rule_files())
    if (file.name == "kernel-classes") return parse_kernel_rules(file.text, "built-in kernel-classes.json");
  throw Error("built-in kernel-classes.json is missing", Error::Kind::Internal);
}

std::string_view classify(const KernelRules& rules, std::string_view activity, const std::string& name) {
  // std::regex recurses per character: a name of tens of kilobytes would exhaust the stack. The first
  // 4 KiB of a kernel name hold what any rule looks at (namespace, kernel, leading template arguments).
  auto end = name.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(name.size(), 4096));
  for (auto& rule : rules.rules)
    if (rule.activity == activity && std::regex_search(name.begin(), end, rule.regex)) return rule.op_class;
  return {};
}

ClassGroup class_group(std::string_view op_class) {
  auto group = op_class.substr(0, op_class.find('.'));
  if (op_class.find('.') == std::string_view::npos || op_class.size() == group.size() + 1)
    throw Error(fmt::format("'{}' is not group.kind (groups: gemm, attention, memory, comm)", op_class));
  if (group == "gemm") return ClassGroup::Gemm;
  if (group == "attention") return ClassGroup::Attention;
  if (group == "memory") return ClassGroup::Memory;
  if (group == "comm") return ClassGroup::Comm;
  throw Error(fmt::format("'{}': unknown group '{}' (groups: gemm, attention, memory, comm)", op_class, group));
}

}  // namespace pipesim
