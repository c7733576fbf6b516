// Loads the MPI module (see make_mpi_comm() in comm.hpp) from the running program's folder.
#include <dlfcn.h>

#include <filesystem>

#include <fmt/format.h>

#include "common/error.hpp"
#include "runtime/comm.hpp"

namespace pipesim {

std::unique_ptr<Comm> make_mpi_comm(bool threads) {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  auto module = (ec ? std::filesystem::path("pipesim-mpi.so") : self.parent_path() / "pipesim-mpi.so").string();
  // RTLD_GLOBAL: Open MPI's own plugins, which it loads in turn, look for its symbols globally.
  void* handle = dlopen(module.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!handle)
    throw Error(fmt::format("MPI: could not load {} ({}); it is built beside the program (scripts/build)", module,
                            dlerror()),
                Error::Kind::Internal);
  using Make = Comm* (*)(bool);
  auto make = reinterpret_cast<Make>(dlsym(handle, "pipesim_make_mpi_comm"));
  if (!make) throw Error(fmt::format("MPI: {} has no pipesim_make_mpi_comm", module), Error::Kind::Internal);
  return std::unique_ptr<Comm>(make(threads));
}

}  // namespace pipesim
