#pragma once
// One error model for the whole project (DESIGN.md convention 7).
// Anything a user can cause (bad model, bad input, missing file, unsupported operator)
// throws rg::Error with a code; `main` and the server catch it and answer with one line.
// Internal invariants use RG_ASSERT, which also throws (code internal) rather than abort,
// so a bug never takes a server down with it.
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace rg {

enum class ErrorCode { invalid_model, unsupported_op, invalid_input, io, internal };

const char* error_code_name(ErrorCode c);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

template <typename... Args>
[[noreturn]] void fail(ErrorCode code, fmt::format_string<Args...> f, Args&&... args) {
  throw Error(code, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace rg

#define RG_ASSERT(cond)                                                               \
  do {                                                                                \
    if (!(cond))                                                                      \
      ::rg::fail(::rg::ErrorCode::internal, "internal error: {} ({}:{})", #cond,      \
                 __FILE__, __LINE__);                                                 \
  } while (0)
