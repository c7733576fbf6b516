// Reading a Kineto trace file, plain or gzip (recognised by its magic bytes, not its name), into one text
// for the scanner of kineto_reader.cpp: the file is read in 1 MiB chunks and inflated through zlib.
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "common/error.hpp"
#include "traces/kineto_reader.hpp"

namespace pipesim {
namespace {

constexpr std::size_t kChunk = 1 << 20;

// The gzip stream after its first chunk (already in `in`, `n` bytes), inflated into `text`. Members
// that follow one another (as `cat a.gz b.gz` makes) are read in turn.
void gunzip(std::FILE* f, const std::string& path, std::vector<unsigned char>& in, std::size_t n, std::string& text) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) throw Error(path + ": zlib failed to start", Error::Kind::Internal);
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, inflateEnd);
  std::vector<unsigned char> out(kChunk);
  std::int64_t before = 0;  // compressed bytes before the current chunk
  z.next_in = in.data();
  z.avail_in = static_cast<uInt>(n);
  bool ended = false;
  for (;;) {
    if (z.avail_in == 0) {
      before += static_cast<std::int64_t>(n);
      n = std::fread(in.data(), 1, in.size(), f);
      if (n == 0) break;
      z.next_in = in.data();
      z.avail_in = static_cast<uInt>(n);
    }
    if (ended && inflateReset(&z) == Z_OK) ended = false;
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    int rc = inflate(&z, Z_NO_FLUSH);
    text.append(reinterpret_cast<const char*>(out.data()), out.size() - z.avail_out);
    if (rc == Z_STREAM_END) ended = true;
    else if (rc != Z_OK && rc != Z_BUF_ERROR)
      throw Error(fmt::format("{}: gzip data is corrupt or truncated at byte {}", path,
                              before + static_cast<std::int64_t>(n - z.avail_in)));
  }
  if (std::ferror(f)) throw Error(fmt::format("{}: read error: {}", path, std::strerror(errno)));
  if (!ended) throw Error(fmt::format("{}: gzip data is corrupt or truncated at byte {}", path, before));
}

}  // namespace

KinetoTrace read_kineto(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::vector<unsigned char> in(kChunk);
  std::size_t n = std::fread(in.data(), 1, in.size(), f.get());
  if (n == 0 && std::ferror(f.get())) throw Error(fmt::format("{}: read error: {}", path, std::strerror(errno)));
  if (n == 0) throw Error(fmt::format("{}: the file is empty", path));
  std::string text;
  if (n >= 2 && in[0] == 0x1f && in[1] == 0x8b) {
    gunzip(f.get(), path, in, n, text);
  } else {
    if (std::fseek(f.get(), 0, SEEK_END) == 0) {  // one allocation where the size is known (not for pipes)
      if (auto size = std::ftell(f.get()); size > 0) text.reserve(static_cast<std::size_t>(size));
      std::fseek(f.get(), static_cast<long>(n), SEEK_SET);
    }
    do text.append(reinterpret_cast<const char*>(in.data()), n);
    while ((n = std::fread(in.data(), 1, in.size(), f.get())) > 0);
    if (std::ferror(f.get())) throw Error(fmt::format("{}: read error: {}", path, std::strerror(errno)));
  }
  return parse_kineto(text, path);
}

}  // namespace pipesim
