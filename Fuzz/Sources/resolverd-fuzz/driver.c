// The fuzzer's entry point is libFuzzer's own main() (linked by -sanitize=fuzzer), which
// calls LLVMFuzzerTestOneInput from the FuzzTargets module for each input. This file only
// names that dependency so the linker keeps it.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int (*const resolverd_fuzz_target)(const uint8_t *, size_t) = LLVMFuzzerTestOneInput;
