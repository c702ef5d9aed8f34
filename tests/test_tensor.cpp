// Tensor basics (placeholder-free seed file; more cases arrive with the test suite).
#include "test_util.h"

using namespace minidl;
using namespace minidl::testing;

TEST_CASE("zeros has the shape and dtype asked for") {
  Tensor t = zeros({2, 3}, DType::Float64);
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.dtype() == DType::Float64);
  CHECK(t.at({1, 2}) == 0.0);
}
