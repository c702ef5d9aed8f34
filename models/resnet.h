// ResNet exactly as torchvision builds it (v1.5: in a Bottleneck the stride sits on the 3x3
// conv), so that a torchvision or timm state dict maps one to one onto our parameter names:
//   conv1 (7x7/2, no bias) - bn1 - relu - maxpool (3x3/2, pad 1)
//   layer1..layer4: blocks of `planes` 64, 128, 256, 512 with strides 1, 2, 2, 2
//   avgpool (global) - flatten - fc
// A block's shortcut is the identity, or `downsample` = 1x1 conv (stride s) + BN when the
// stride or channel count changes. Initialisation follows torchvision: Kaiming normal
// (fan_out, ReLU gain) for convs, BN weight 1 / bias 0, Linear's default uniform init.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "layers/batchnorm2d.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/module.h"
#include "layers/pooling.h"
#include "layers/sequential.h"

namespace minidl {

// Two 3x3 convs; expansion 1 (resnet18/34).
class BasicBlock : public Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, Generator& gen, DType dtype);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Sequential> downsample;  // null when the shortcut is the identity
};

// 1x1 reduce, 3x3 (stride here), 1x1 expand; expansion 4 (resnet50/101/152).
class Bottleneck : public Module {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, Generator& gen, DType dtype);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> conv1, conv2, conv3;
  std::shared_ptr<BatchNorm2d> bn1, bn2, bn3;
  std::shared_ptr<Sequential> downsample;
};

enum class BlockKind { Basic, Bottleneck };

struct ResNetConfig {
  std::string arch;              // "resnet50", ...
  BlockKind block;
  std::vector<int64_t> layers;   // blocks per stage, 4 entries
};

class ResNet : public Module {
 public:
  ResNet(const ResNetConfig& config, int64_t num_classes, Generator& gen = default_generator(),
         DType dtype = DType::Float32);
  Tensor forward(const Tensor& x) override;  // [N, 3, H, W] -> logits [N, num_classes]

  const ResNetConfig config;
  const int64_t num_classes;
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<MaxPool2d> maxpool;
  std::shared_ptr<Sequential> layer1, layer2, layer3, layer4;
  std::shared_ptr<AdaptiveAvgPool2d> avgpool;
  std::shared_ptr<Linear> fc;
};

// The five standard depths. `arch` is one of resnet18, resnet34, resnet50, resnet101,
// resnet152; anything else is an error listing them.
ResNetConfig resnet_config(const std::string& arch);
std::vector<std::string> resnet_arch_names();
std::shared_ptr<ResNet> make_resnet(const std::string& arch, int64_t num_classes = 1000,
                                    Generator& gen = default_generator(), DType dtype = DType::Float32);
inline std::shared_ptr<ResNet> resnet18(int64_t k = 1000, Generator& g = default_generator()) { return make_resnet("resnet18", k, g); }
inline std::shared_ptr<ResNet> resnet34(int64_t k = 1000, Generator& g = default_generator()) { return make_resnet("resnet34", k, g); }
inline std::shared_ptr<ResNet> resnet50(int64_t k = 1000, Generator& g = default_generator()) { return make_resnet("resnet50", k, g); }
inline std::shared_ptr<ResNet> resnet101(int64_t k = 1000, Generator& g = default_generator()) { return make_resnet("resnet101", k, g); }
inline std::shared_ptr<ResNet> resnet152(int64_t k = 1000, Generator& g = default_generator()) { return make_resnet("resnet152", k, g); }

}  // namespace minidl
