// The layer shapes of a built minidl ResNet at a given input size, read off the model's own
// modules (kernel, stride, padding, channels of every Conv2d; the pools; the fc), and the
// FLOPs they imply. bench_train counts a step's work with it; bench_kernels takes from it
// every conv, batch-norm and pool shape to benchmark. Nothing here is a table of numbers:
// change the model and the shapes follow.
//
// FLOPs count multiply-adds as 2 and only the conv and linear products (batch norm, ReLU,
// pools and the optimizer are memory-bound and left out, as everyone counts them).
//   forward of a conv:  2 * O * OH * OW * C * KH * KW per image; linear: 2 * in * out
//   training: forward + dW (same count) + dX (same count) for every layer whose input needs
//   a gradient, i.e. all but the stem (the images need none).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "models/resnet.h"

namespace bench {

struct ConvShape {
  std::string name;  // the module's state-dict prefix, e.g. "layer2.0.conv2"
  int64_t C, H, W, O, K, S, P, OH, OW;
  bool input_needs_grad;  // false only for the stem, whose input is the image batch
  double flops() const { return 2.0 * double(O * OH * OW) * double(C * K * K); }  // per image, forward
};

struct ResNetShapes {
  std::vector<ConvShape> convs;  // in forward order; each is followed by its BatchNorm2d
  int64_t pool_C, pool_H, pool_W, pool_K, pool_S, pool_P;  // the max pool's input and window
  int64_t gap_C, gap_H, gap_W;                             // the global average pool's input
  int64_t fc_in, fc_out;

  double forward_flops() const {  // per image
    double f = 2.0 * double(fc_in * fc_out);
    for (const ConvShape& c : convs) f += c.flops();
    return f;
  }
  double train_flops() const {  // per image: forward, dW everywhere, dX where the input needs it
    double f = 3.0 * 2.0 * double(fc_in * fc_out);
    for (const ConvShape& c : convs) f += c.flops() * (c.input_needs_grad ? 3.0 : 2.0);
    return f;
  }
};

inline int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p) { return (in + 2 * p - k) / s + 1; }

// Follows an input of img x img through `net`.
inline ResNetShapes trace_resnet(const minidl::ResNet& net, int64_t img) {
  ResNetShapes r{};
  int64_t c = 3, h = img, w = img;
  // Records conv `m` applied to (cc, hh, ww) and advances those to its output; the
  // downsample is given a copy of the block's input, so the running (c, h, w) stays.
  auto conv = [&](const std::string& name, const minidl::Conv2d& m, int64_t& cc, int64_t& hh, int64_t& ww) {
    if (m.in_channels != cc) throw std::runtime_error("trace_resnet: " + name + " expects other input channels");
    const int64_t oh = conv_out(hh, m.kernel_size, m.stride, m.padding),
                  ow = conv_out(ww, m.kernel_size, m.stride, m.padding);
    r.convs.push_back({name, cc, hh, ww, m.out_channels, m.kernel_size, m.stride, m.padding, oh, ow, !r.convs.empty()});
    cc = m.out_channels, hh = oh, ww = ow;
  };
  conv("conv1", *net.conv1, c, h, w);
  const minidl::MaxPool2d& mp = *net.maxpool;
  r.pool_C = c, r.pool_H = h, r.pool_W = w, r.pool_K = mp.kernel_size, r.pool_S = mp.stride, r.pool_P = mp.padding;
  h = conv_out(h, mp.kernel_size, mp.stride, mp.padding), w = conv_out(w, mp.kernel_size, mp.stride, mp.padding);
  const std::shared_ptr<minidl::Sequential> stages[] = {net.layer1, net.layer2, net.layer3, net.layer4};
  for (int s = 0; s < 4; ++s) {
    for (size_t b = 0; b < stages[s]->size(); ++b) {
      const std::string prefix = "layer" + std::to_string(s + 1) + "." + std::to_string(b) + ".";
      const std::shared_ptr<minidl::Module> block = (*stages[s])[b];
      int64_t ic = c, ih = h, iw = w;  // the block's input, which the shortcut reads
      std::shared_ptr<minidl::Sequential> downsample;
      if (auto bot = std::dynamic_pointer_cast<minidl::Bottleneck>(block)) {
        conv(prefix + "conv1", *bot->conv1, c, h, w);
        conv(prefix + "conv2", *bot->conv2, c, h, w);
        conv(prefix + "conv3", *bot->conv3, c, h, w);
        downsample = bot->downsample;
      } else if (auto basic = std::dynamic_pointer_cast<minidl::BasicBlock>(block)) {
        conv(prefix + "conv1", *basic->conv1, c, h, w);
        conv(prefix + "conv2", *basic->conv2, c, h, w);
        downsample = basic->downsample;
      } else {
        throw std::runtime_error("trace_resnet: " + prefix + " is neither a Bottleneck nor a BasicBlock");
      }
      if (downsample) {
        auto ds = std::dynamic_pointer_cast<minidl::Conv2d>((*downsample)[0]);
        if (!ds) throw std::runtime_error("trace_resnet: " + prefix + "downsample.0 is not a Conv2d");
        conv(prefix + "downsample.0", *ds, ic, ih, iw);
      }
    }
  }
  r.gap_C = c, r.gap_H = h, r.gap_W = w;
  r.fc_in = net.fc->in_features, r.fc_out = net.fc->out_features;
  if (r.fc_in != c) throw std::runtime_error("trace_resnet: fc expects other input features");
  return r;
}

// The distinct conv shapes of `r` in forward order, each with the number of layers sharing it
// (the benchmarks time each shape once and weight it by that count).
inline std::vector<std::pair<ConvShape, int>> distinct_convs(const ResNetShapes& r) {
  std::vector<std::pair<ConvShape, int>> out;
  for (const ConvShape& c : r.convs) {
    auto it = std::find_if(out.begin(), out.end(), [&](const std::pair<ConvShape, int>& u) {
      const ConvShape& a = u.first;
      return a.C == c.C && a.H == c.H && a.W == c.W && a.O == c.O && a.K == c.K && a.S == c.S && a.P == c.P;
    });
    if (it == out.end()) out.push_back({c, 1});
    else ++it->second;
  }
  return out;
}

// torchvision's published forward cost at 224x224 (GMACs, the "GFLOPS" column of its model
// table, convs + fc with 1000 classes). 0 for an arch it does not list.
inline double torchvision_gmacs_224(const std::string& arch) {
  if (arch == "resnet18") return 1.81;
  if (arch == "resnet34") return 3.66;
  if (arch == "resnet50") return 4.09;
  if (arch == "resnet101") return 7.80;
  if (arch == "resnet152") return 11.51;
  return 0.0;
}

// Self-check of the counter: traced at 224x224 the model's forward MACs (with a 1000-class
// fc) must match torchvision's published figure to its 3 significant digits. Returns an
// empty string when they agree, else what disagrees.
inline std::string check_flop_counter(const minidl::ResNet& net, const std::string& arch) {
  const double want = torchvision_gmacs_224(arch);
  if (want == 0.0) return "";
  ResNetShapes s = trace_resnet(net, 224);
  s.fc_out = 1000;
  const double got = s.forward_flops() / 2.0 / 1e9;
  if (std::abs(got - want) > 0.006 * want)
    return "FLOP counter self-check failed: " + arch + " at 224x224 counts " + std::to_string(got) +
           " GMACs, torchvision publishes " + std::to_string(want);
  return "";
}

}  // namespace bench
