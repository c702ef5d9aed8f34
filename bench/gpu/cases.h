// The cases of bench_kernels --device cuda, built from the shapes of minidl's own ResNet50
// (bench/resnet_shapes.h), at the two sizes the GPU race of issue 7 runs: 224x224 batch 64
// and 64x64 batch 256.
#pragma once
#include <string>
#include <vector>

#include "bench/gpu/gpu_bench.h"
#include "bench/resnet_shapes.h"

namespace bench::gpu {

// ResNet50 traced at img x img, run with this batch; "@224/b64" in the case names.
struct RaceSize {
  int img = 224, batch = 64;
  std::string tag() const {
    std::string t = "@";  // appended piecewise: GCC 12 warns falsely (-Wrestrict) on "@" + to_string
    t += std::to_string(img);
    t += "/b";
    t += std::to_string(batch);
    return t;
  }
};

// Our tiled SGEMM vs cuBLAS: square sizes, then the GEMMs the convs lower to when the batch
// is folded into the columns (per distinct conv of `r` at batch `batch`):
//   fwd: W [O, CKK] x col [CKK, N*OH*OW];  dx: W^T x dY [O, N*OH*OW];  dw: dY x col^T
// and the fc's three products.
std::vector<Spec> gemm_specs(const ResNetShapes& r, int batch);

// Our im2col + tiled-GEMM conv (conv_own.h, called directly) vs cuDNN (cudnn_conv.h), every
// distinct conv shape, forward, dX (not for the stem), dW.
std::vector<Spec> conv_specs(const ResNetShapes& r, const RaceSize& size);

// Memory-bound kernels, rated in GB/s of compulsory traffic: batch norm forward and backward
// (training) on every distinct BN of the net with the epilogue the graph allows there (ReLU
// after conv1/conv2 and the stem, add + ReLU at a block's tail, none after a downsample),
// relu forward/backward and the residual add on the largest activation, the stem's max pool,
// the global average pool. Errors against the CPU kernels on the same inputs.
std::vector<Spec> memory_specs(const ResNetShapes& r, const RaceSize& size);

// AdamW over every parameter of the model (sizes given): one launch per tensor as the
// optimizer does it, and one launch over all of them as one flat buffer.
std::vector<Spec> adamw_specs(const std::vector<int64_t>& param_numels);

}  // namespace bench::gpu
