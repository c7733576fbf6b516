// placeholder until the Megatron transcription lands
#include "common/error.hpp"
#include "schedules/registry.hpp"
namespace pipesim {
Schedule interleaved_1f1b(const GeneratorOptions&) { throw Error("interleaved-1f1b: not yet"); }
}  // namespace pipesim
