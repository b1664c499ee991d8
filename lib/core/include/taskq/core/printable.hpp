#pragma once
// Text from handlers and other sessions (error messages, results, stderr tails, host names) shown
// on a terminal: control characters and terminal escapes are written as visible escapes, so a
// job cannot move the cursor, clear the screen, retitle the window or hide text from an operator.
#include <string>
#include <string_view>

namespace taskq {

/// `text` with every character a terminal would act on written as an escape, the rest unchanged:
///   - C0 controls (U+0000-U+001F, including ESC, BEL, BS, CR, LF and TAB) and DEL: \n, \r, \t,
///     else \xNN (so ESC is \x1b);
///   - C1 controls (U+0080-U+009F, such as the single-character CSI U+009B), the line and paragraph
///     separators (U+2028, U+2029) and the bidirectional controls (U+202A-U+202E,
///     U+2066-U+2069): \uNNNN;
///   - bytes that are not valid UTF-8: \xNN.
/// Backslashes themselves are left alone: this is for people to read, not to parse back.
std::string printable(std::string_view text);

}  // namespace taskq
