#include "models/resnet.h"

#include "autograd/ops.h"
#include "layers/conv_bn.h"

namespace minidl {

namespace {

std::shared_ptr<Sequential> make_downsample(int64_t inplanes, int64_t outplanes, int64_t stride, Generator& gen,
                                            DType dtype) {
  auto ds = std::make_shared<Sequential>();
  ds->push_back(std::make_shared<Conv2d>(inplanes, outplanes, 1, stride, 0, false, gen, dtype));
  ds->push_back(std::make_shared<BatchNorm2d>(outplanes, 1e-5, 0.1, dtype));
  return ds;
}

// The shortcut: x itself, or downsample = 1x1 conv + batch norm (one conv_bn step).
Tensor shortcut(const std::shared_ptr<Sequential>& downsample, const Tensor& x) {
  if (!downsample) return x;
  MINIDL_CHECK(downsample->size() == 2, "ResNet block: downsample must be [Conv2d, BatchNorm2d], it has ",
               downsample->size(), " modules");
  auto conv = std::dynamic_pointer_cast<Conv2d>((*downsample)[0]);
  auto bn = std::dynamic_pointer_cast<BatchNorm2d>((*downsample)[1]);
  MINIDL_CHECK(conv && bn, "ResNet block: downsample must be [Conv2d, BatchNorm2d]");
  return conv_bn(*conv, *bn, x, false);
}

}  // namespace

BasicBlock::BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, Generator& gen, DType dtype)
    : Module("BasicBlock") {
  // Registration order = torchvision's attribute order, which fixes the state_dict order.
  conv1 = register_module("conv1", std::make_shared<Conv2d>(inplanes, planes, 3, stride, 1, false, gen, dtype));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(planes, 1e-5, 0.1, dtype));
  conv2 = register_module("conv2", std::make_shared<Conv2d>(planes, planes, 3, 1, 1, false, gen, dtype));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes, 1e-5, 0.1, dtype));
  if (stride != 1 || inplanes != planes * kExpansion)
    downsample = register_module("downsample", make_downsample(inplanes, planes * kExpansion, stride, gen, dtype));
}

// The BN -> relu and BN -> + identity -> relu steps run as one fused op each
// (BatchNorm2d::forward_relu / forward_add_relu): the same values and gradients as
// relu(bn(...)) and relu(bn(...) + identity), one pass over memory instead of two or three.
// For inference, conv_bn (layers/conv_bn.h) also fuses the conv before them; same bits.
Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = conv_bn(*conv1, *bn1, x, true);
  Tensor identity = shortcut(downsample, x);
  return conv_bn(*conv2, *bn2, out, true, identity);
}

Bottleneck::Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, Generator& gen, DType dtype)
    : Module("Bottleneck") {
  const int64_t width = planes;  // groups = 1, base width 64
  conv1 = register_module("conv1", std::make_shared<Conv2d>(inplanes, width, 1, 1, 0, false, gen, dtype));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(width, 1e-5, 0.1, dtype));
  conv2 = register_module("conv2", std::make_shared<Conv2d>(width, width, 3, stride, 1, false, gen, dtype));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(width, 1e-5, 0.1, dtype));
  conv3 = register_module("conv3", std::make_shared<Conv2d>(width, planes * kExpansion, 1, 1, 0, false, gen, dtype));
  bn3 = register_module("bn3", std::make_shared<BatchNorm2d>(planes * kExpansion, 1e-5, 0.1, dtype));
  if (stride != 1 || inplanes != planes * kExpansion)
    downsample = register_module("downsample", make_downsample(inplanes, planes * kExpansion, stride, gen, dtype));
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor out = conv_bn(*conv1, *bn1, x, true);
  out = conv_bn(*conv2, *bn2, out, true);
  Tensor identity = shortcut(downsample, x);
  return conv_bn(*conv3, *bn3, out, true, identity);
}

ResNet::ResNet(const ResNetConfig& cfg, int64_t classes, Generator& gen, DType dtype)
    : Module("ResNet"), config(cfg), num_classes(classes) {
  MINIDL_CHECK(num_classes >= 1, cfg.arch, ": num_classes must be >= 1, got ", num_classes);
  MINIDL_CHECK(cfg.layers.size() == 4, cfg.arch, ": a ResNet has 4 stages, config lists ", cfg.layers.size());
  const int64_t expansion = cfg.block == BlockKind::Basic ? BasicBlock::kExpansion : Bottleneck::kExpansion;
  conv1 = register_module("conv1", std::make_shared<Conv2d>(3, 64, 7, 2, 3, false, gen, dtype));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(64, 1e-5, 0.1, dtype));
  maxpool = register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
  int64_t inplanes = 64;
  auto make_stage = [&](int64_t planes, int64_t blocks, int64_t stride) {
    auto stage = std::make_shared<Sequential>();
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t s = b == 0 ? stride : 1;
      if (cfg.block == BlockKind::Basic) stage->push_back(std::make_shared<BasicBlock>(inplanes, planes, s, gen, dtype));
      else stage->push_back(std::make_shared<Bottleneck>(inplanes, planes, s, gen, dtype));
      inplanes = planes * expansion;
    }
    return stage;
  };
  layer1 = register_module("layer1", make_stage(64, cfg.layers[0], 1));
  layer2 = register_module("layer2", make_stage(128, cfg.layers[1], 2));
  layer3 = register_module("layer3", make_stage(256, cfg.layers[2], 2));
  layer4 = register_module("layer4", make_stage(512, cfg.layers[3], 2));
  avgpool = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  fc = register_module("fc", std::make_shared<Linear>(512 * expansion, num_classes, true, gen, dtype));
}

Tensor ResNet::forward(const Tensor& x) {
  MINIDL_CHECK(x.dim() == 4 && x.size(1) == 3, config.arch, ": input must be [N, 3, H, W], got ",
               shape_str(x.shape()));
  Tensor h = (*maxpool)(conv_bn(*conv1, *bn1, x, true));
  h = (*layer4)((*layer3)((*layer2)((*layer1)(h))));
  return (*fc)((*avgpool)(h).flatten(1));
}

std::vector<std::string> resnet_arch_names() { return {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"}; }

ResNetConfig resnet_config(const std::string& arch) {
  if (arch == "resnet18") return {arch, BlockKind::Basic, {2, 2, 2, 2}};
  if (arch == "resnet34") return {arch, BlockKind::Basic, {3, 4, 6, 3}};
  if (arch == "resnet50") return {arch, BlockKind::Bottleneck, {3, 4, 6, 3}};
  if (arch == "resnet101") return {arch, BlockKind::Bottleneck, {3, 4, 23, 3}};
  if (arch == "resnet152") return {arch, BlockKind::Bottleneck, {3, 8, 36, 3}};
  throw Error("unknown architecture '" + arch + "' (choose resnet18, resnet34, resnet50, resnet101 or resnet152)");
}

std::shared_ptr<ResNet> make_resnet(const std::string& arch, int64_t num_classes, Generator& gen, DType dtype) {
  return std::make_shared<ResNet>(resnet_config(arch), num_classes, gen, dtype);
}

}  // namespace minidl
