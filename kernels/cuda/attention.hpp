// Causal multi-head attention on the GPU, with the CPU kernel's contract (kernels/cpu/ops.hpp) and its
// method: per batch element, the heads' score, context and gradient products as strided-batched cuBLAS
// GEMMs over the head slices of the [batch·seq x heads·head_dim] tensors, and a causal softmax between.
// Deterministic (cuBLAS's GEMMs are, on one GPU model, and the softmax reduces by a fixed tree).
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cpu/ops.hpp"
#include "kernels/cuda/gemm.hpp"

namespace pipesim::cuda {

using kernels::AttentionShape;

// probs [batch x heads x seq x seq] is written by forward and read by backward; `scratch` holds
// batch·heads·seq·seq elements for the backward's score gradients. Device pointers; asynchronous on `stream`.
template <class T>
void attention_forward(Blas& blas, const AttentionShape& s, const T* q, const T* k, const T* v, T* probs, T* out,
                       cudaStream_t stream);
template <class T>
void attention_backward(Blas& blas, const AttentionShape& s, const T* q, const T* k, const T* v, const T* probs,
                        const T* dout, T* dq, T* dk, T* dv, T* scratch, cudaStream_t stream);

}  // namespace pipesim::cuda
