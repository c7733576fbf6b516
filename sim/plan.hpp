// A parallel plan: how a model is laid out on a cluster and scheduled. Plain struct, validated once by
// resolve(), which also derives the data-parallel size, the micro-batch count, the schedule's stages (from
// its registry layout, without generating it), the layers of each stage and the GPU of every (pipeline
// rank, data-parallel rank, tensor rank). Errors name the field and the value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "models/accounting.hpp"
#include "models/model.hpp"
#include "schedules/registry.hpp"
#include "topologies/cluster.hpp"

namespace pipesim {

enum class Precision { BF16, FP8 };  // of the GEMMs (their peak); activations stay BF16
enum class Placement { TpDpPp, TpPpDp };  // rank order, innermost first: Megatron's, or pipelines side by side

std::string_view to_string(Precision precision);  // "bf16", "fp8"
std::string_view to_string(Placement placement);  // "tp-dp-pp", "tp-pp-dp"
// Throw Error naming `field` and the accepted values.
Precision parse_precision(std::string_view text, std::string_view field);
Placement parse_placement(std::string_view text, std::string_view field);

struct Plan {
  std::string schedule = "1f1b";
  int pp = 1;                 // pipeline ranks
  int virtual_stages = kDefaultVirtualStages;  // interleaved-1f1b only
  int tp = 1;                 // tensor parallel (innermost)
  int ep = 1;                 // expert parallel, inside the data-parallel group
  int dp = 0;                 // data parallel (ZeRO-1); 0: every GPU of the cluster is used
  int microbatches = 0;       // per step per pipeline; 0: from global_batch
  int micro_batch_size = 1;   // sequences
  int seq = 0;                // 0: the model's
  int global_batch = 0;       // sequences per step; 0: dp x microbatches x micro_batch_size
  std::vector<int> layers_per_stage;  // transformer layers of each stage; empty: even, the rest on middle stages
  Placement placement = Placement::TpDpPp;
  Precision precision = Precision::BF16;
  bool recompute = false;
  bool selective_recompute = false;  // DeepSeek-V3's: norms and MLA up-projections recomputed in the backward
  bool sequence_parallel = false;  // Megatron's: norms and dropout split over tp; all-reduces become RS + AG
  bool flash_attention = true;  // false: attention keeps its s x s softmax for the backward (pre-2022 training)
  bool dropout = false;         // Korthikanti's dropout masks (GPT-3-era training)
  bool overlap_grad_reduce = false;  // reduce-scatter gradients during the backward (Megatron-LM's option)
  bool full = false;          // simulate every GPU, not one representative per stage
  // Bytes per Adam moment (two per parameter, beside FP32 master weights): 4 (FP32), or 2 (BF16, as
  // DeepSeek-V3 §3.3.3 keeps them); 0: 2 with FP8 precision (DeepSeek's recipe), else 4.
  int adam_moment_bytes = 0;
  FlopsConvention flops_convention = FlopsConvention::Pipesim;  // how MFU counts FLOPs (the report says which)
  int moment_bytes() const { return adam_moment_bytes ? adam_moment_bytes : precision == Precision::FP8 ? 2 : 4; }
};

// A plan with everything derived.
struct ResolvedPlan {
  Plan plan;
  int gpus = 0;                     // pp x dp x tp
  int stages = 0;                   // of the schedule (2pp for V and DualPipe, v·pp interleaved)
  // [stage] -> indices into model_layers() (0: embedding, 1..L: transformer layers, L+1: head, then MTP)
  std::vector<std::vector<int>> stage_layers;
  std::vector<int> stage_to_rank;
  GeneratorOptions schedule_options() const { return {plan.pp, plan.microbatches, plan.virtual_stages}; }
  int gpu(int pp_rank, int dp_rank, int tp_rank = 0) const;
  std::vector<int> dp_group(int pp_rank, int tp_rank = 0) const;  // the GPUs holding the same stage
  std::vector<int> ep_group(int pp_rank, int dp_rank) const;      // the EP group a GPU belongs to
};

// Validates `plan` against the model, the cluster and the schedule's supported sizes.
ResolvedPlan resolve(const Plan& plan, const ModelSpec& model, const ClusterSpec& cluster);

}  // namespace pipesim
