// doctest's main for the unit-test binary: `build/tests/minidl_tests` runs everything,
// `--source-file=*test_conv*` or `-tc="name*"` narrows it down.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
