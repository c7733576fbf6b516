// `pipesim serve`: a local web server for the page in web/ (embedded into the binary at build time) and a
// JSON API that runs the CLI's own commands in-process (cli/in_process.hpp), so every answer is what
// `--format json` prints for the same options. Bounded: request bodies over --max-body are refused (413),
// a fixed pool of --workers threads answers, a sweep over --max-sweep-points is refused, and a sweep stops
// when its client goes away. Nothing is written to disk. docs/web-ui.md describes the API.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/in_process.hpp"
#include "common/error.hpp"
#include "common/presets.hpp"
#include "schedules/registry.hpp"

namespace pipesim {
std::span<const PresetFile> web_asset_files();  // web/, embedded by cmake/EmbedPresets.cmake
}

namespace pipesim::cli {
namespace {

struct ServeArgs {
  std::string host = "127.0.0.1";
  int port = 8080;
  int workers = 8;
  int max_body_mib = 16;
  long long max_sweep_points = 20000;
};

struct ServerState {
  std::atomic<int> active_sweeps{0};
  std::atomic<long long> sweep_points{0};  // computed since the start, over all sweeps
  long long max_sweep_points = 0;
};

// cpp-httplib compresses "application/json" (exactly that type) with brotli at its highest quality when
// the browser accepts it: 6 s for a 3 MB trace. With the charset named it sends the bytes as they are.
constexpr const char* kJson = "application/json; charset=utf-8";

void reply_json(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, kJson);
}
void reply_error(httplib::Response& res, int status, const std::string& message) {
  reply_json(res, status, nlohmann::json{{"error", message}}.dump() + "\n");
}

// A request's body: {"files": {name: text}, option: value, ...}. Options the server sets are refused.
struct Request {
  std::vector<std::string> words;
  std::map<std::string, std::string> files;
  nlohmann::json options;
};
Request parse_request(const std::string& body, std::initializer_list<const char*> reserved) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body.empty() ? std::string("{}") : body);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(fmt::format("malformed JSON in the request body: {}", e.what()));
  }
  if (!j.is_object()) throw Error("the request's body must be a JSON object of options");
  Request r;
  if (j.contains("files")) {
    auto& files = j["files"];
    if (!files.is_object()) throw Error("'files' must be an object of file name -> text");
    for (auto& [name, text] : files.items()) {
      if (!text.is_string()) throw Error(fmt::format("files.{}: the contents must be a string", name));
      r.files[name] = text.get<std::string>();
    }
    j.erase("files");
  }
  for (auto* key : reserved)
    if (j.contains(key)) throw Error(fmt::format("option '{}' is set by the server; leave it out", key));
  r.options = j;
  r.words = options_to_words(j);
  return r;
}

// Runs `command` with the request's options; the answer is `pick(capture)` or the command's error.
void answer(httplib::Response& res, const std::string& body, const std::vector<std::string>& head,
            const std::vector<std::string>& tail, std::initializer_list<const char*> reserved,
            const std::function<std::string(const Capture&)>& pick, const char* type = kJson) {
  Request request;
  try {
    request = parse_request(body, reserved);
  } catch (const Error& e) {
    return reply_error(res, 400, e.what());
  }
  Capture capture(request.files);
  std::vector<std::string> words = head;
  words.insert(words.end(), request.words.begin(), request.words.end());
  words.insert(words.end(), tail.begin(), tail.end());
  auto result = run_in_process(words, capture);
  if (!result.ok) return reply_error(res, result.bad_input ? 400 : 500, result.error);
  res.status = 200;
  res.set_content(pick(capture), type);
}

std::string preset_list(std::span<const PresetFile> files) {
  auto out = nlohmann::ordered_json::array();
  for (auto& f : files) {
    nlohmann::ordered_json entry{{"name", f.name}};
    try {
      entry["preset"] = nlohmann::ordered_json::parse(f.text);
    } catch (const nlohmann::json::exception&) {
      entry["preset"] = nullptr;
    }
    out.push_back(entry);
  }
  return out.dump(1) + "\n";
}

std::string schedule_list() {
  auto out = nlohmann::ordered_json::array();
  for (auto& info : schedule_registry())
    out.push_back({{"name", info.name}, {"description", info.description}, {"virtual_stages", info.uses_virtual_stages}});
  return out.dump(1) + "\n";
}

// The request's --vary values, as the sweep command would read them.
std::vector<std::string> vary_of(const nlohmann::json& options) {
  std::vector<std::string> vary;
  if (!options.contains("vary")) return vary;
  auto& v = options["vary"];
  for (auto& item : v.is_array() ? v : nlohmann::json::array({v})) {
    if (!item.is_string()) throw Error(fmt::format("option 'vary': {} is not a string FIELD=V1,V2,...", item.dump()));
    vary.push_back(item.get<std::string>());
  }
  return vary;
}

// One sweep streamed as server-sent events: "progress" {done, total}, "row" (a point as it completes),
// then "result" (the CLI's JSON, Pareto marked) or "error" {error}. Closing the stream cancels it.
struct SweepStream {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<std::string> events;
  bool finished = false;
  std::atomic<bool> cancel{false};
  std::thread worker;

  void push(const std::string& event, const std::string& data) {
    {
      std::lock_guard lock(mutex);
      events.push_back(fmt::format("event: {}\ndata: {}\n\n", event, data));
    }
    ready.notify_all();
  }
};

void start_sweep(ServerState& state, const httplib::Request& req, httplib::Response& res) {
  Request request;
  try {
    request = parse_request(req.body, {"format", "output", "o"});
    auto points = static_cast<long long>(sweep_points(vary_of(request.options)));
    if (points > state.max_sweep_points)
      throw Error(fmt::format("sweep: {} points; this server computes at most {} (--max-sweep-points)", points,
                              state.max_sweep_points));
  } catch (const Error& e) {
    return reply_error(res, 400, e.what());
  }
  std::vector<std::string> words{"sweep"};
  words.insert(words.end(), request.words.begin(), request.words.end());
  if (!request.options.contains("jobs")) words.insert(words.end(), {"--jobs", "2"});
  words.insert(words.end(), {"--format", "json"});
  auto stream = std::make_shared<SweepStream>();
  ++state.active_sweeps;
  stream->worker = std::thread([stream, words, files = request.files, &state] {
    Capture capture(files);
    capture.cancel = &stream->cancel;
    capture.progress = [&](std::size_t done, std::size_t total, const std::string& row) {
      ++state.sweep_points;
      stream->push("progress", nlohmann::json{{"done", done}, {"total", total}}.dump());
      stream->push("row", row);
    };
    auto result = run_in_process(words, capture);
    if (result.ok) {
      nlohmann::ordered_json all;
      try {
        all = nlohmann::ordered_json::parse(capture.standard_output);
      } catch (const nlohmann::json::exception& e) {
        all = nlohmann::ordered_json{{"error", e.what()}};
      }
      stream->push("result", all.dump());
    } else {
      stream->push("error", nlohmann::json{{"error", result.error}}.dump());
    }
    {
      std::lock_guard lock(stream->mutex);
      stream->finished = true;
    }
    stream->ready.notify_all();
    --state.active_sweeps;
  });
  res.set_chunked_content_provider(
      "text/event-stream",
      [stream](std::size_t, httplib::DataSink& sink) {
        std::unique_lock lock(stream->mutex);
        stream->ready.wait_for(lock, std::chrono::milliseconds(200),
                               [&] { return !stream->events.empty() || stream->finished; });
        while (!stream->events.empty()) {
          auto event = std::move(stream->events.front());
          stream->events.pop_front();
          if (!sink.write(event.data(), event.size())) {
            stream->cancel = true;
            return false;
          }
        }
        if (!sink.is_writable()) {
          stream->cancel = true;
          return false;
        }
        if (stream->finished) sink.done();
        return true;
      },
      [stream](bool success) {
        if (!success) stream->cancel = true;
        if (stream->worker.joinable()) stream->worker.join();
      });
}

std::string content_type(std::string_view name) {
  auto ends = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "application/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

void add_routes(httplib::Server& server, ServerState& state) {
  server.Get("/api/schedules", [](const httplib::Request&, httplib::Response& res) { reply_json(res, 200, schedule_list()); });
  server.Get("/api/models", [](const httplib::Request&, httplib::Response& res) {
    reply_json(res, 200, preset_list(model_preset_files()));
  });
  server.Get("/api/clusters", [](const httplib::Request&, httplib::Response& res) {
    reply_json(res, 200, preset_list(cluster_preset_files()));
  });
  server.Get("/api/status", [&state](const httplib::Request&, httplib::Response& res) {
    reply_json(res, 200,
               nlohmann::json{{"active_sweeps", state.active_sweeps.load()}, {"sweep_points", state.sweep_points.load()}}
                       .dump() + "\n");
  });
  auto output = [](const Capture& c) { return c.standard_output; };
  server.Post("/api/simulate", [output](const httplib::Request& req, httplib::Response& res) {
    answer(res, req.body, {"simulate"}, {"--format", "json"}, {"format", "output", "o", "trace", "timeline"}, output);
  });
  server.Post("/api/trace", [](const httplib::Request& req, httplib::Response& res) {
    answer(res, req.body, {"simulate"}, {"--format", "json", "--trace", "trace.json"},
           {"format", "output", "o", "trace", "timeline"}, [](const Capture& c) {
             auto it = c.outputs.find("trace.json");
             if (it == c.outputs.end()) throw Error("one schedule per trace: name a single --schedule");
             return it->second;
           });
  });
  server.Post("/api/schedule", [output](const httplib::Request& req, httplib::Response& res) {
    // "format" picks the output here and travels as the server's own option; the rest are the command's.
    std::string format = "json", body = req.body;
    if (auto parsed = nlohmann::json::parse(body.empty() ? std::string("{}") : body, nullptr, false);
        parsed.is_object() && parsed.contains("format")) {
      if (!parsed["format"].is_string()) return reply_error(res, 400, "option 'format': give json, csv, text or grid");
      format = parsed["format"].get<std::string>();
      parsed.erase("format");
      body = parsed.dump();
    }
    if (format != "json" && format != "csv" && format != "text" && format != "grid")
      return reply_error(res, 400, fmt::format("format '{}': use json, csv, text or grid", format));
    answer(res, body, {"schedule"}, {"--format", format}, {"format", "output", "o"}, output,
           format == "json" ? kJson : format == "csv" ? "text/csv" : "text/plain; charset=utf-8");
  });
  // A measured run (files."run.json") against a prediction: files."predicted.json" when given, else the
  // run calibrated and simulated, as `calibrate` then `simulate --calibration` would.
  server.Post("/api/compare", [](const httplib::Request& req, httplib::Response& res) {
    Request request;
    try {
      request = parse_request(req.body, {"format", "output", "o"});
      if (!request.files.count("run.json")) throw Error("give the measured run as files.\"run.json\"");
      if (!request.words.empty()) throw Error("compare takes no options, only files");
    } catch (const Error& e) {
      return reply_error(res, 400, e.what());
    }
    Capture capture(request.files);
    if (!capture.inputs.count("predicted.json")) {
      for (auto words : {std::vector<std::string>{"calibrate", "run.json", "-o", "calibration.json"},
                         std::vector<std::string>{"simulate", "--calibration", "calibration.json", "--timeline",
                                                  "predicted.json", "--format", "json"}}) {
        auto r = run_in_process(words, capture);
        if (!r.ok) return reply_error(res, r.bad_input ? 400 : 500, r.error);
        for (auto& [name, text] : capture.outputs) capture.inputs[name] = text;
      }
      capture.standard_output.clear();
    }
    auto r = run_in_process({"compare", "run.json", "predicted.json", "--format", "json"}, capture);
    if (!r.ok) return reply_error(res, r.bad_input ? 400 : 500, r.error);
    reply_json(res, 200, capture.standard_output);
  });
  server.Post("/api/sweep", [&state](const httplib::Request& req, httplib::Response& res) { start_sweep(state, req, res); });
  // The page: embedded files by exact name; nothing else, so no path leads outside them.
  server.Get(R"(/([A-Za-z0-9_.-]*))", [](const httplib::Request& req, httplib::Response& res) {
    std::string name = req.matches[1];
    if (name.empty()) name = "index.html";
    for (auto& f : web_asset_files())
      if (f.name == name) {
        res.set_content(std::string(f.text), content_type(name).c_str());
        return;
      }
    res.status = 404;
    res.set_content("not found\n", "text/plain");
  });
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    reply_error(res, res.status,
                res.status == 404   ? fmt::format("no such route: {} {}", req.method, req.path)
                : res.status == 413 ? std::string("the request body is too large")
                                    : fmt::format("HTTP {}", res.status));
  });
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const Error& e) {
      reply_error(res, e.exit_code() == 2 ? 400 : 500, e.what());
    } catch (const std::exception& e) {
      reply_error(res, 500, fmt::format("internal error: {}", e.what()));
    }
  });
}

void run(const ServeArgs& args) {
  httplib::Server server;
  ServerState state;
  state.max_sweep_points = args.max_sweep_points;
  int workers = args.workers;
  server.new_task_queue = [workers] { return new httplib::ThreadPool(static_cast<std::size_t>(workers)); };
  server.set_payload_max_length(static_cast<std::size_t>(args.max_body_mib) << 20);
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which a second server on a port in use
  // starts silently and shares the connections with the first.
  socket_t listening = INVALID_SOCKET;
  server.set_socket_options([&listening](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void*>(&yes), sizeof(yes));
    listening = sock;
  });
  add_routes(server, state);
  int port = args.port;
  if (port == 0) {
    port = server.bind_to_any_port(args.host);
    if (port < 0) throw Error(fmt::format("cannot listen on {}: no free port", args.host));
  } else if (!server.bind_to_port(args.host, port)) {
    throw Error(fmt::format("cannot listen on {}:{} (in use, or not an address of this machine); try --port", args.host,
                            port));
  }
  // cpp-httplib listens with a backlog of 5: fifty clients connecting at once while the workers keep the
  // machine busy overflow it, and some connections were reset. Listening again only raises the backlog.
  if (listening != INVALID_SOCKET) ::listen(listening, SOMAXCONN);
  if (args.host != "127.0.0.1" && args.host != "localhost" && args.host != "::1")
    fmt::print(stderr, "pipesim serve: warning: listening on {}, not only this machine: anyone who can reach it can "
                       "run simulations here\n", args.host);
  fmt::print("pipesim serve: http://{}:{}/ (Ctrl-C stops)\n", args.host, port);
  std::fflush(stdout);
  if (!server.listen_after_bind()) throw Error("the server stopped unexpectedly", Error::Kind::Internal);
}

}  // namespace

void exec_serve_program(char**) {}  // this is pipesim-serve

void add_serve_command(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand("serve", "Web UI: a page where a plan becomes a timeline, a table and a Pareto plot");
  cmd->footer(
      "Open the printed address in a browser. The page compares schedules for a model on a cluster (the\n"
      "DeepSeek-V3 study by default), draws the timeline, the memory per rank and a sweep's Pareto front, and\n"
      "holds a measured run against its prediction. The JSON API under /api/ answers what the CLI prints with\n"
      "--format json (docs/web-ui.md). Everything is computed in this process; nothing is written to disk.\n\n"
      "Example:\n  pipesim serve                 # http://127.0.0.1:8080/\n  pipesim serve --port 0        # any free port");
  cmd->add_option("--host", args->host, "Address to listen on (127.0.0.1: this machine only)")->capture_default_str();
  cmd->add_option("--port", args->port, "Port (0: any free port, printed)")->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--workers", args->workers, "Requests answered at once")->check(CLI::Range(1, 256))->capture_default_str();
  cmd->add_option("--max-body", args->max_body_mib, "Largest request body in MiB (larger: 413)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--max-sweep-points", args->max_sweep_points, "Largest sweep a request may ask for")
      ->check(CLI::Range(1LL, 1000000LL))
      ->capture_default_str();
  cmd->callback([args] { run(*args); });
}

}  // namespace pipesim::cli
