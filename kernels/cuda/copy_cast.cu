// Layout copies and dtype casts: one thread per element in a grid-stride loop, int64
// indices, the source (and for copies the destination) addressed through an OffsetMap.
#include <type_traits>

#include "kernels/cuda/copy_cast.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/runtime.h"

namespace minidl::cuda {

namespace {

constexpr int kThreads = 256;

// The smallest flat index whose float value could not become an int64 (kNoneBad if none).
// One slot for the process: casts are queued from one host thread at a time.
constexpr unsigned long long kNoneBad = ~0ULL;
__device__ unsigned long long g_first_bad_cast;

template <class T>
__global__ void copy_kernel(const T* src, T* dst, int64_t n, OffsetMap<2> map) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t o[2];
    map.offsets(i, o);
    dst[o[1]] = src[o[0]];
  }
}

template <class A, class B>
__global__ void cast_kernel(const A* src, B* dst, int64_t n, OffsetMap<1> map) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    const A v = src[map.offset(i)];
    if constexpr (std::is_floating_point_v<A> && std::is_integral_v<B>) {
      // int64 holds [-2^63, 2^63); NaN fails both comparisons.
      if (!(v >= A(-9223372036854775808.0) && v < A(9223372036854775808.0))) {
        atomicMin(&g_first_bad_cast, static_cast<unsigned long long>(i));
        dst[i] = 0;
        continue;
      }
    }
    dst[i] = static_cast<B>(v);
  }
}

// Calls f(T{}) for the C++ type of a float32, float64 or int64 tensor.
template <class F>
void dispatch_cast(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    case DType::Int64: return f(int64_t{});
    default: break;
  }
  throw Error(detail::concat(op, ": dtype ", dtype_name(t), " cannot be cast on cuda (float32, float64 or int64)"));
}

template <class A, class B>
void launch_cast(const A* src, B* dst, int64_t n, const OffsetMap<1>& map, const char* op) {
  constexpr bool checked = std::is_floating_point_v<A> && std::is_integral_v<B>;
  if constexpr (checked)
    MINIDL_CUDA_CHECK(cudaMemcpyToSymbolAsync(g_first_bad_cast, &kNoneBad, sizeof kNoneBad, 0,
                                              cudaMemcpyHostToDevice, stream()));
  cast_kernel<A, B><<<grid_for(n, kThreads), kThreads, 0, stream()>>>(src, dst, n, map);
  MINIDL_CUDA_CHECK_LAUNCH("cast_kernel");
  if constexpr (checked) {
    unsigned long long bad = kNoneBad;
    MINIDL_CUDA_CHECK(cudaMemcpyFromSymbolAsync(&bad, g_first_bad_cast, sizeof bad, 0, cudaMemcpyDeviceToHost,
                                                stream()));
    MINIDL_CUDA_CHECK(cudaStreamSynchronize(stream()));
    if (bad == kNoneBad) return;
    A value{};
    copy_device_to_host(&value, src + map.offset(int64_t(bad)), sizeof value);
    throw Error(detail::concat(op, ": value ", value, " at flat index ", bad, " cannot be converted to int64"));
  }
}

}  // namespace

namespace {
// One launch over at most kMaxDims merged dims.
void copy_slab(const void* src, void* dst, size_t elem_size, const OffsetMap<2>& map) {
  const int64_t n = map.numel();
  // Both sides contiguous (one merged dim of stride 1): a plain device-to-device copy.
  if (map.ndim == 1 && map.strides[0][0] == 1 && map.strides[1][0] == 1) {
    copy_device_to_device(dst, src, size_t(n) * elem_size);
    return;
  }
  const unsigned blocks = grid_for(n, kThreads);
  switch (elem_size) {
    case 2:
      copy_kernel<<<blocks, kThreads, 0, stream()>>>(static_cast<const uint16_t*>(src), static_cast<uint16_t*>(dst),
                                                     n, map);
      break;
    case 4:
      copy_kernel<<<blocks, kThreads, 0, stream()>>>(static_cast<const uint32_t*>(src), static_cast<uint32_t*>(dst),
                                                     n, map);
      break;
    case 8:
      copy_kernel<<<blocks, kThreads, 0, stream()>>>(static_cast<const uint64_t*>(src), static_cast<uint64_t*>(dst),
                                                     n, map);
      break;
    default: throw Error(detail::concat("strided_copy: element size ", elem_size, " is not 2, 4 or 8 bytes"));
  }
  MINIDL_CUDA_CHECK_LAUNCH("copy_kernel");
}
}  // namespace

void strided_copy(const void* src, const std::vector<int64_t>& src_strides, void* dst,
                  const std::vector<int64_t>& dst_strides, const std::vector<int64_t>& shape, size_t elem_size) {
  std::vector<int64_t> sizes = shape, ss = src_strides, ds = dst_strides;
  MINIDL_CHECK(ss.size() == sizes.size() && ds.size() == sizes.size(), "strided_copy: strides for ", ss.size(),
               " and ", ds.size(), " dims given for shape ", shape_str(shape));
  cpu::coalesce_dims(sizes, {&ss, &ds});
  // The leading `outer` dims (none unless the layout is deeper than kMaxDims) are walked here,
  // one launch per index, the rest by the kernel.
  const size_t outer = sizes.size() > size_t(kMaxDims) ? sizes.size() - kMaxDims : 0;
  const std::vector<int64_t> inner(sizes.begin() + outer, sizes.end());
  const auto map = make_offset_map<2>(inner, {std::vector<int64_t>(ss.begin() + outer, ss.end()),
                                              std::vector<int64_t>(ds.begin() + outer, ds.end())},
                                      "strided_copy");
  int64_t slabs = 1;
  for (size_t d = 0; d < outer; ++d) slabs *= sizes[d];
  for (int64_t k = 0; k < slabs; ++k) {
    int64_t rest = k, so = 0, dof = 0;
    for (size_t d = outer; d-- > 0;) {
      const int64_t i = rest % sizes[d];
      rest /= sizes[d];
      so += i * ss[d];
      dof += i * ds[d];
    }
    const int64_t bytes = int64_t(elem_size);
    copy_slab(static_cast<const char*>(src) + so * bytes, static_cast<char*>(dst) + dof * bytes, elem_size, map);
  }
}

void cast(DType from, const void* src, DType to, void* dst, int64_t n, const OffsetMap<1>& map, const char* op) {
  if (n <= 0) return;
  dispatch_cast(from, op, [&](auto a) {
    dispatch_cast(to, op, [&](auto b) {
      using A = decltype(a);
      using B = decltype(b);
      launch_cast(static_cast<const A*>(src), static_cast<B*>(dst), n, map, op);
    });
  });
}

}  // namespace minidl::cuda
