// Commands run in-process with their files captured (see in_process.hpp).
#include "cli/in_process.hpp"

#include <exception>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "common/error.hpp"

namespace pipesim::cli {

CommandResult run_in_process(const std::vector<std::string>& argv, Capture& capture) {
  // The capture must be this thread's (its constructor installs it): else the command would touch the disk.
  if (Capture::current() != &capture)
    throw Error("run_in_process: the capture is not installed on this thread", Error::Kind::Internal);
  CLI::App app{"pipesim (in the web server)"};
  app.require_subcommand(1);
  add_schedule_command(app);
  add_simulate_command(app);
  add_sweep_command(app);
  add_calibrate_command(app);
  add_compare_command(app);
  std::vector<std::string> words{"pipesim"};
  words.insert(words.end(), argv.begin(), argv.end());
  std::vector<char*> pointers;
  for (auto& w : words) pointers.push_back(w.data());
  CommandResult result;
  try {
    app.parse(static_cast<int>(pointers.size()), pointers.data());
    result.ok = true;
  } catch (const CLI::ParseError& e) {
    result.bad_input = true;
    result.error = e.get_name() == "CallForHelp" || e.get_name() == "CallForAllHelp" ? "help is not available here"
                                                                                      : std::string(e.what());
  } catch (const Error& e) {
    result.bad_input = e.exit_code() == 2;
    result.error = e.what();
  } catch (const std::exception& e) {
    result.error = fmt::format("internal error: {}", e.what());
  }
  return result;
}

std::vector<std::string> options_to_words(const nlohmann::json& options) {
  if (!options.is_object()) throw Error("the request's body must be a JSON object of options");
  std::vector<std::string> words;
  auto scalar = [](const std::string& key, const nlohmann::json& v) -> std::string {
    if (v.is_string()) {
      auto text = v.get<std::string>();
      if (text.rfind("--", 0) == 0) throw Error(fmt::format("option '{}': the value '{}' looks like an option", key, text));
      return text;
    }
    if (v.is_number_integer()) return std::to_string(v.get<long long>());
    if (v.is_number()) return fmt::format("{}", v.get<double>());
    throw Error(fmt::format("option '{}': {} is not a string or a number", key, v.dump()));
  };
  for (auto& [key, value] : options.items()) {
    bool named = !key.empty() && key.size() <= 40 && key[0] != '-';
    for (char c : key) named = named && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
    if (!named) throw Error(fmt::format("option '{}': names are lowercase letters, digits and '-'", key));
    if (value.is_null() || (value.is_boolean() && !value.get<bool>())) continue;
    if (value.is_boolean()) {
      words.push_back("--" + key);
    } else if (value.is_array()) {
      for (auto& v : value) {
        words.push_back("--" + key);
        words.push_back(scalar(key, v));
      }
    } else {
      words.push_back("--" + key);
      words.push_back(scalar(key, value));
    }
  }
  return words;
}

}  // namespace pipesim::cli
