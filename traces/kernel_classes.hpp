// Operator classes of GPU kernels (GEMM, attention, memory-bound kinds, communication), decided by a table
// of name patterns that is data: the built-in traces/rules/kernel-classes.json or a user's file of the
// same schema. docs/trace-import.md §2 lists the classes and why each rule is there.
#pragma once

#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace pipesim {

enum class ClassGroup { Gemm, Attention, Memory, Comm };

struct KernelRule {
  std::string op_class;   // "gemm.fp8", "memory.cast", "comm.dispatch", ...
  std::string activity;   // "kernel", "memcpy" or "memset"
  std::string pattern;    // ECMAScript regular expression, searched in the name
  std::regex regex;
};

struct KernelRules {
  std::string source;     // "built-in" or the file name
  std::vector<KernelRule> rules;
};

KernelRules default_kernel_rules();
// The schema: {"rules": [{"class": "gemm.fp8", "pattern": "...", "activity": "kernel"}], "comment": "..."};
// errors name the JSON path (a bad regular expression included).
KernelRules parse_kernel_rules(std::string_view text, const std::string& source);

// The class of a GPU activity ("" when no rule matches). `activity`: "kernel", "memcpy" or "memset".
std::string_view classify(const KernelRules& rules, std::string_view activity, const std::string& name);

// "gemm.fp8" -> Gemm; throws Error for a class outside the four groups.
ClassGroup class_group(std::string_view op_class);

}  // namespace pipesim
