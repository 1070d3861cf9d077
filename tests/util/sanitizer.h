// Whether this binary is built with AddressSanitizer: its allocator and
// address-space reservations make memory measurements (RSS, RLIMIT_AS)
// meaningless, so the tests that take them skip or relax under it.
#pragma once

namespace nydus::testutil {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace nydus::testutil
