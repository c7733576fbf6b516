// The one error type of pipesim. Library code throws it with context; only `main` turns it into an
// exit code: 2 for bad input (the user can fix it), 1 for an internal failure.
#pragma once

#include <stdexcept>
#include <string>

namespace pipesim {

class Error : public std::runtime_error {
 public:
  enum class Kind { Input, Internal };
  explicit Error(std::string message, Kind kind = Kind::Input)
      : std::runtime_error(std::move(message)), kind_(kind) {}
  Kind kind() const { return kind_; }
  int exit_code() const { return kind_ == Kind::Input ? 2 : 1; }

 private:
  Kind kind_;
};

}  // namespace pipesim
