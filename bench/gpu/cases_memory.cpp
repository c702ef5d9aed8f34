// Memory-bound cases of bench_kernels --device cuda: batch norm (with its fused epilogues),
// relu, the residual add, max pool, global average pool, AdamW. Rated in GB/s of compulsory
// traffic (every input read once, every output written once, per-channel vectors left out);
// each checked against the CPU kernel (kernels/cpu) on the same inputs copied back.
#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "bench/gpu/cases.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/pool.h"
#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/optim.h"
#include "kernels/cuda/pool.h"
#include "kernels/cuda/runtime.h"

namespace bench::gpu {

namespace cu = minidl::cuda;
namespace cpu = minidl::cpu;

namespace {

constexpr double kEps = 1e-5, kMomentum = 0.1;  // BatchNorm2d's defaults

// What follows a BN in ResNet's graph: ReLU (stem, a block's inner convs), add the shortcut
// then ReLU (a block's last conv), or nothing (a downsample, whose sum the tail BN takes).
enum class Tail { None, Relu, AddRelu };
const char* const kTailName[] = {"", " +relu", " +add+relu"};

// Conv i's BN tail: a downsample has none; the last main-path conv of a block (the next
// conv belongs to another block, or is this block's downsample) adds and applies ReLU.
Tail tail_of(const ResNetShapes& r, size_t i) {
  const std::string& name = r.convs[i].name;
  const auto ends_with = [](const std::string& s, const std::string& end) {
    return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
  };
  if (ends_with(name, "downsample.0")) return Tail::None;
  const size_t dot = name.rfind('.');
  if (name.rfind("layer", 0) != 0 || dot == std::string::npos) return Tail::Relu;  // the stem
  const std::string block = name.substr(0, dot + 1);                               // "layer1.0."
  if (i + 1 == r.convs.size()) return Tail::AddRelu;
  const std::string& next = r.convs[i + 1].name;
  return next.rfind(block, 0) != 0 || ends_with(next, "downsample.0") ? Tail::AddRelu : Tail::Relu;
}

std::string shape_name(int64_t C, int64_t HW) { return std::to_string(C) + "x" + std::to_string(HW); }

// Batch norm in training mode on [N, C, HW] with the given tail.
//   forward  reads x (and the residual), writes y;
//   backward reads dy, x (and the fused forward's output), writes dx (and d_residual).
Spec bn_spec(int64_t N, int64_t C, int64_t HW, Tail tail, int count, bool backward, const std::string& tag) {
  const std::string dir = backward ? "bwd" : "fwd";
  return {
      "bn " + dir + " " + tag + " " + shape_name(C, HW) + kTailName[int(tail)], "bn " + dir + " " + tag, count, [=] {
        const int64_t n = N * C * HW;
        const bool relu = tail != Tail::None, add = tail == Tail::AddRelu;
        const Buf x = random_floats(n, 6, -2.f, 3.f), dy = random_floats(n, 7), res = random_floats(n, 8);
        const Buf gamma = random_floats(C, 9, 0.5f, 1.5f), beta = random_floats(C, 10);
        const Buf y = device_floats(n), mean = device_floats(C), invstd = device_floats(C);
        const Buf rmean = device_floats(C), rvar = device_floats(C);
        cu::fill_f32(rmean->f(), C, 0.f), cu::fill_f32(rvar->f(), C, 1.f);
        const auto forward = [=] {
          cu::batchnorm_forward_train(x->f(), gamma->f(), beta->f(), N, C, HW, kEps, kMomentum, y->f(), mean->f(),
                                      invstd->f(), rmean->f(), rvar->f(), add ? res->f() : nullptr, relu);
        };
        Case k;
        if (!backward) {
          k.bytes = 4.0 * double(n) * (add ? 3 : 2);
          k.ours = forward;
          k.check = [=] {
            poison(y->f(), n), poison(mean->f(), C), poison(invstd->f(), C);
            forward();
            const std::vector<float> hx = to_host(x->f(), n), hg = to_host(gamma->f(), C), hb = to_host(beta->f(), C),
                                     hr = to_host(res->f(), n);
            std::vector<float> ry(static_cast<size_t>(n)), rm(static_cast<size_t>(C)), ri(static_cast<size_t>(C));
            cpu::batchnorm_forward_train<float>(hx.data(), hg.data(), hb.data(), N, C, HW, kEps, kMomentum, ry.data(),
                                                rm.data(), ri.data(), nullptr, nullptr, add ? hr.data() : nullptr,
                                                relu);
            return std::max({rel_err(to_host(y->f(), n), ry), rel_err(to_host(mean->f(), C), rm),
                             rel_err(to_host(invstd->f(), C), ri)});
          };
          return k;
        }
        forward();  // the saved statistics and the fused output backward reads
        const Buf dx = device_floats(n), dg = device_floats(C), db = device_floats(C), dres = device_floats(n);
        const auto bwd = [=] {
          cu::batchnorm_backward(dy->f(), x->f(), gamma->f(), mean->f(), invstd->f(), N, C, HW, true, dx->f(), dg->f(),
                                 db->f(), relu ? y->f() : nullptr, add ? dres->f() : nullptr);
        };
        k.bytes = 4.0 * double(n) * (3 + (relu ? 1 : 0) + (add ? 1 : 0));
        k.ours = bwd;
        k.check = [=] {
          poison(dx->f(), n), poison(dg->f(), C), poison(db->f(), C), poison(dres->f(), n);
          bwd();
          const std::vector<float> hdy = to_host(dy->f(), n), hx = to_host(x->f(), n), hg = to_host(gamma->f(), C),
                                   hm = to_host(mean->f(), C), hi = to_host(invstd->f(), C), hy = to_host(y->f(), n);
          std::vector<float> rdx(static_cast<size_t>(n)), rdr(static_cast<size_t>(n));
          std::vector<float> rdg(static_cast<size_t>(C)), rdb(static_cast<size_t>(C));
          cpu::batchnorm_backward<float>(hdy.data(), hx.data(), hg.data(), hm.data(), hi.data(), N, C, HW, true,
                                         rdx.data(), rdg.data(), rdb.data(), relu ? hy.data() : nullptr,
                                         add ? rdr.data() : nullptr);
          double e = std::max({rel_err(to_host(dx->f(), n), rdx), rel_err(to_host(dg->f(), C), rdg),
                               rel_err(to_host(db->f(), C), rdb)});
          if (add) e = std::max(e, rel_err(to_host(dres->f(), n), rdr));
          return e;
        };
        return k;
      }};
}

// Elementwise on n contiguous floats: relu forward (reads x, writes y), relu backward
// (reads dy and relu's output, writes dx), the residual add (reads two, writes one).
enum class Elementwise { Relu, ReluBackward, Add };

Spec elementwise_spec(Elementwise op, int64_t n, const std::string& shape, const std::string& tag) {
  static const char* const names[] = {"relu fwd", "relu bwd", "add"};
  const std::string name = names[int(op)];
  return {name + " " + tag + " " + shape, name + " " + tag, 1,
          [=] {
            const Buf a = random_floats(n, 11), b = random_floats(n, 12), out = device_floats(n);
            const auto map1 = cu::make_offset_map<1>({n}, {{{1}}}, "bench relu");
            const auto map2 = cu::make_offset_map<2>({n}, {{{1}, {1}}}, "bench binary");
            const auto run = [=] {
              if (op == Elementwise::Relu)
                cu::unary_f32(cu::UnaryOp::Relu, a->f(), out->f(), n, map1);
              else
                cu::binary_f32(op == Elementwise::Add ? cu::BinaryOp::Add : cu::BinaryOp::ReluMask, a->f(), b->f(),
                               out->f(), n, map2);
            };
            Case k;
            k.bytes = 4.0 * double(n) * (op == Elementwise::Relu ? 2 : 3);
            k.ours = run;
            k.check = [=] {
              poison(out->f(), n);
              run();
              const std::vector<float> ha = to_host(a->f(), n), hb = to_host(b->f(), n);
              std::vector<float> ref(static_cast<size_t>(n));
              for (size_t i = 0; i < ref.size(); ++i)
                ref[i] = op == Elementwise::Relu  ? std::max(ha[i], 0.f)
                         : op == Elementwise::Add ? ha[i] + hb[i]
                                                  : (hb[i] > 0.f ? ha[i] : 0.f);
              return rel_err(to_host(out->f(), n), ref);
            };
            return k;
          },
          false};  // ResNet's graph fuses these into batch norm: no step total
}

// The stem's max pool. Forward reads x, writes y and the int32 argmax; backward reads dy
// and the argmax, writes dx.
Spec maxpool_spec(const ResNetShapes& r, int64_t N, bool backward, const std::string& tag) {
  const cpu::PoolGeom g =
      cpu::make_pool_geom(N, r.pool_C, r.pool_H, r.pool_W, r.pool_K, r.pool_K, r.pool_S, r.pool_S, r.pool_P, r.pool_P);
  const std::string dir = backward ? "bwd" : "fwd";
  const std::string name = "maxpool " + dir + " " + tag + " " + std::to_string(g.KH) + "x" + std::to_string(g.KW) +
                           "/" + std::to_string(g.SH) + " " + std::to_string(g.C) + "x" + std::to_string(g.H) + "x" +
                           std::to_string(g.W);
  return {name, "maxpool " + dir + " " + tag, 1, [=] {
            const int64_t in = g.N * g.C * g.H * g.W, out = g.N * g.C * g.OH * g.OW;
            const Buf x = random_floats(in, 13), dy = random_floats(out, 14), y = device_floats(out),
                      dx = device_floats(in), arg = device_bytes(size_t(out) * sizeof(int32_t));
            const auto forward = [=] { cu::maxpool2d_forward(g, x->f(), y->f(), arg->as<int32_t>()); };
            const auto host_args = [=] {
              std::vector<int32_t> h(static_cast<size_t>(out));
              cu::copy_device_to_host(h.data(), arg->as<int32_t>(), h.size() * sizeof(int32_t));
              return h;
            };
            Case k;
            k.bytes = 4.0 * double(in + 2 * out);
            if (!backward) {
              k.ours = forward;
              k.check = [=] {
                poison(y->f(), out);
                cu::memset_zero(arg->as<int32_t>(), size_t(out) * sizeof(int32_t));
                forward();
                const std::vector<float> hx = to_host(x->f(), in);
                std::vector<float> ry(static_cast<size_t>(out));
                std::vector<int32_t> ra(static_cast<size_t>(out));
                cpu::maxpool2d_forward<float>(g, hx.data(), ry.data(), ra.data());
                // A different argmax is a wrong result even where values tie: error 1.
                return rel_err(to_host(y->f(), out), ry) + (host_args() == ra ? 0.0 : 1.0);
              };
              return k;
            }
            forward();
            const auto bwd = [=] { cu::maxpool2d_backward(g, dy->f(), arg->as<int32_t>(), dx->f()); };
            k.ours = bwd;
            k.check = [=] {
              poison(dx->f(), in);
              bwd();
              const std::vector<float> hdy = to_host(dy->f(), out);
              const std::vector<int32_t> ha = host_args();
              std::vector<float> ref(static_cast<size_t>(in));
              cpu::maxpool2d_backward<float>(g, hdy.data(), ha.data(), ref.data());
              return rel_err(to_host(dx->f(), in), ref);
            };
            return k;
          }};
}

// Global average pool: forward reads [NC, HW] and writes [NC]; backward the reverse.
Spec gap_spec(const ResNetShapes& r, int64_t N, bool backward, const std::string& tag) {
  const int64_t NC = N * r.gap_C, HW = r.gap_H * r.gap_W;
  const std::string dir = backward ? "bwd" : "fwd";
  const std::string name = "gap " + dir + " " + tag + " " + std::to_string(r.gap_C) + "x" + std::to_string(r.gap_H) +
                           "x" + std::to_string(r.gap_W);
  return {name, "gap " + dir + " " + tag, 1, [=] {
            const int64_t in_n = backward ? NC : NC * HW, out_n = backward ? NC * HW : NC;
            const Buf in = random_floats(in_n, 15), out = device_floats(out_n);
            const auto run = [=] {
              if (backward)
                cu::global_avgpool_backward(in->f(), NC, HW, out->f());
              else
                cu::global_avgpool_forward(in->f(), NC, HW, out->f());
            };
            Case k;
            k.bytes = 4.0 * double(NC * HW + NC);
            k.ours = run;
            k.check = [=] {
              poison(out->f(), out_n);
              run();
              const std::vector<float> h = to_host(in->f(), in_n);
              std::vector<float> ref(static_cast<size_t>(out_n));
              if (backward)
                cpu::global_avgpool_backward<float>(h.data(), NC, HW, ref.data());
              else
                cpu::global_avgpool_forward<float>(h.data(), NC, HW, ref.data());
              return rel_err(to_host(out->f(), out_n), ref);
            };
            return k;
          }};
}

}  // namespace

std::vector<Spec> memory_specs(const ResNetShapes& r, const RaceSize& size) {
  const std::string tag = size.tag();
  const int64_t N = size.batch;
  // Distinct (C, HW, tail) in order of first appearance, with the number of BNs sharing it.
  std::vector<std::tuple<int64_t, int64_t, Tail>> order;
  std::map<std::tuple<int64_t, int64_t, Tail>, int> bns;
  for (size_t i = 0; i < r.convs.size(); ++i) {
    const auto key = std::make_tuple(r.convs[i].O, r.convs[i].OH * r.convs[i].OW, tail_of(r, i));
    if (bns[key]++ == 0) order.push_back(key);
  }
  std::vector<Spec> specs;
  for (bool bwd : {false, true})
    for (const auto& key : order)
      specs.push_back(bn_spec(N, std::get<0>(key), std::get<1>(key), std::get<2>(key), bns[key], bwd, tag));
  // The largest activation of the net (the stem's output at these sizes).
  const ConvShape* big = &r.convs.front();
  for (const ConvShape& c : r.convs)
    if (c.O * c.OH * c.OW > big->O * big->OH * big->OW) big = &c;
  const std::string act = std::to_string(big->O) + "x" + std::to_string(big->OH) + "x" + std::to_string(big->OW);
  for (Elementwise op : {Elementwise::Relu, Elementwise::ReluBackward, Elementwise::Add})
    specs.push_back(elementwise_spec(op, N * big->O * big->OH * big->OW, act, tag));
  for (bool bwd : {false, true}) specs.push_back(maxpool_spec(r, N, bwd, tag));
  for (bool bwd : {false, true}) specs.push_back(gap_spec(r, N, bwd, tag));
  return specs;
}

std::vector<Spec> adamw_specs(const std::vector<int64_t>& param_numels) {
  // Each tensor starts on a 256-byte boundary, as the allocator places separate parameters;
  // the flat launch covers the same number of values in one run.
  std::vector<std::pair<int64_t, int64_t>> tensors;  // (offset, numel) in floats
  int64_t total = 0, span = 0;
  for (int64_t n : param_numels) {
    tensors.push_back({span, n});
    total += n, span += (n + 63) / 64 * 64;
  }
  // train_resnet's defaults at step 10: lr 1e-3, weight decay 0.05, betas (0.9, 0.999).
  const double lr = 1e-3, wd = 0.05, b1 = 0.9, b2 = 0.999, step = 10;
  const double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
  const cu::AdamWScalarsF32 s{
      float(1 - lr * wd),        float(b1), float(1 - b1), float(b2), float(1 - b2), float(lr / bc1),
      float(1 / std::sqrt(bc2)), 1e-8f};
  std::vector<Spec> specs;
  for (bool per_tensor : {true, false}) {
    const std::string name = per_tensor ? "adamw " + std::to_string(param_numels.size()) + " tensors, one launch each"
                                        : "adamw flat, one launch";
    const std::vector<std::pair<int64_t, int64_t>> runs =
        per_tensor ? tensors : std::vector<std::pair<int64_t, int64_t>>{{0, total}};
    specs.push_back({name + " (" + std::to_string(total) + " params)", "adamw", 1,
                     [=] {
                       const Buf w = random_floats(span, 16), g = random_floats(span, 17),
                                 m = random_floats(span, 18, -0.1f, 0.1f), v = random_floats(span, 19, 0.f, 0.01f);
                       const auto run = [=] {
                         for (const auto& [off, n] : runs)
                           cu::adamw_step_f32(w->f() + off, g->f() + off, m->f() + off, v->f() + off, n, s);
                       };
                       Case k;
                       k.bytes = 4.0 * 7.0 * double(total);  // reads w, g, m, v; writes w, m, v
                       k.ours = run;
                       k.check = [=] {
                         // One step from the state the timed calls left, on the host in the same
                         // rounding order (optim.h), against the kernel's, over the values it covers.
                         std::vector<float> hw = to_host(w->f(), span), hm = to_host(m->f(), span),
                                            hv = to_host(v->f(), span);
                         const std::vector<float> hg = to_host(g->f(), span);
                         run();
                         for (const auto& [off, n] : runs)
                           for (size_t i = size_t(off); i < size_t(off + n); ++i) {
                             hw[i] = hw[i] * s.decay;
                             hm[i] = s.b1 * hm[i] + s.ob1 * hg[i];
                             const float gg = hg[i] * hg[i];
                             hv[i] = s.b2 * hv[i] + s.ob2 * gg;
                             const float denom = std::sqrt(hv[i]) * s.inv_bc2_sqrt + s.eps;
                             const float upd = s.step_size * hm[i];
                             hw[i] = hw[i] - upd / denom;
                           }
                         return std::max({rel_err(to_host(w->f(), span), hw), rel_err(to_host(m->f(), span), hm),
                                          rel_err(to_host(v->f(), span), hv)});
                       };
                       return k;
                     },
                     per_tensor});  // the optimizer's way is the step's; the flat launch is for comparison
  }
  return specs;
}

}  // namespace bench::gpu
