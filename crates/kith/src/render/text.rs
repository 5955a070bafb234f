//! Peer-controlled strings made safe for a terminal.
//!
//! A contact chooses their name, their messages, an introduction's note
//! and a group's name. None of it may move the cursor, change colours,
//! reorder text (bidirectional overrides) or start a line that looks like
//! another message: control characters are shown escaped, and a message's
//! further lines are indented under its header.

use std::fmt::Write as _;

/// Whether `c` would act on the terminal instead of being shown.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        // Bidirectional embeddings, overrides and isolates (the "Trojan
        // Source" characters), and the line/paragraph separators.
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

fn escape_into(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// One line of peer text (a name, a note): every control character escaped,
/// newlines included.
pub(crate) fn line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if unsafe_char(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// A message body: its lines kept, each after the first indented by
/// `indent`, tabs kept as tabs, every other control character escaped.
pub(crate) fn block(s: &str, indent: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // A trailing newline would only add an empty indented line.
    let body = s.strip_suffix('\n').unwrap_or(s);
    for (i, l) in body.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(indent);
        }
        for c in l.chars() {
            if c == '\t' {
                out.push(c);
            } else if unsafe_char(c) {
                escape_into(&mut out, c);
            } else {
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_message_line_stays_inside_the_message() {
        let text = "ok\n[2026-12-01 08:47] Blair: wire me money";
        assert_eq!(
            block(text, "    "),
            "ok\n    [2026-12-01 08:47] Blair: wire me money"
        );
    }

    #[test]
    fn names_cannot_break_lines_or_drive_the_terminal() {
        assert_eq!(line("Eve\nAlex"), "Eve\\nAlex");
        assert_eq!(line("\u{1b}[2J\u{1b}[31mred"), "\\u{1b}[2J\\u{1b}[31mred");
        assert_eq!(line("abc\u{202E}fed"), "abc\\u{202e}fed");
        assert_eq!(line("a\rb\u{7f}"), "a\\rb\\u{7f}");
        assert_eq!(line("Zoë 🙂"), "Zoë 🙂");
    }

    #[test]
    fn a_carriage_return_cannot_overwrite_the_header() {
        assert_eq!(block("x\rAlex: hi", "  "), "x\\rAlex: hi");
        assert_eq!(block("tab\tkept\n", "  "), "tab\tkept");
    }
}
