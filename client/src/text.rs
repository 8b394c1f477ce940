//! Text that came from people or cameras, made safe for whoever reads the output.
//!
//! Purposes, reasons, notes, camera names and detail fields are free text typed by
//! users, and sometimes by someone who means harm to the person reading them:
//! - a terminal obeys control characters, so `ESC [ 2 J` clears an auditor's screen,
//!   `CR` or backspaces overwrite what was printed before, and an escape sequence can
//!   retitle the window or fake a line that was never logged ([`terminal`]);
//! - a spreadsheet runs a cell that begins with `=`, `+`, `-` or `@` as a formula, so
//!   `=HYPERLINK("http://x","y")` in an audit export becomes a link that leaks data
//!   or worse when the auditor opens the CSV ([`csv_cell`], the OWASP rule).
//!
//! JSON output needs neither: serde_json escapes every control character.

use std::borrow::Cow;
use std::fmt::Write;

/// True for characters that move the cursor, change the terminal's state or reorder
/// what is shown: C0 and C1 controls, DEL, and the Unicode bidirectional and invisible
/// formatting marks ("Trojan Source").
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| unsafe_char(c) && !(keep_newlines && c == '\n')) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' if keep_newlines => out.push('\n'),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `s` for a terminal, on one line: every control character and bidirectional mark is
/// shown escaped (`\x1b`, `\r`, `\n`, `\u{202e}`), so nothing can move the cursor,
/// clear the screen or fake a line.
pub fn terminal(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Like [`terminal`], keeping line breaks: for messages written in several lines, such
/// as errors.
pub fn terminal_lines(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// One CSV cell. A cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return
/// gets a leading `'`, so a spreadsheet shows it as text instead of running it as a
/// formula (OWASP, CSV injection); control characters other than line breaks are
/// escaped as for the terminal; the cell is quoted when it holds `,`, `"` or a line
/// break.
pub fn csv_cell(s: &str) -> String {
    // A lone `-` (the user of an unauthenticated attempt) is no formula.
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s != "-";
    let body = escape(s, true);
    let cell = if formula { format!("'{body}") } else { body.into_owned() };
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_cannot_move_the_cursor() {
        assert_eq!(terminal("ward 3, bed 4"), "ward 3, bed 4");
        assert!(matches!(terminal("plain"), Cow::Borrowed(_)));
        assert_eq!(terminal("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(terminal("ok\rFAKE\x08\x07\tx\ny"), "ok\\rFAKE\\x08\\x07\\tx\\ny");
        assert_eq!(terminal("\u{9b}31m \u{7f}"), "\\x9b31m \\x7f");
        assert_eq!(terminal("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(terminal("Zürich 東京"), "Zürich 東京");
        for c in (0u32..0x110000).filter_map(char::from_u32) {
            let out = terminal(&c.to_string()).into_owned();
            assert!(!out.chars().any(unsafe_char), "{c:?} came out as {out:?}");
        }
    }

    #[test]
    fn csv_cells_are_never_formulas() {
        assert_eq!(csv_cell("incident 12"), "incident 12");
        assert_eq!(csv_cell("=HYPERLINK(\"http://x\",\"y\")"), "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"");
        assert_eq!(csv_cell("=1+2"), "'=1+2");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2+3"), "'-2+3");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\\tx");
        assert_eq!(csv_cell("\r=x"), "'\\r=x");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("line 1\nline 2"), "\"line 1\nline 2\"");
        assert_eq!(csv_cell("x\x1b[2J"), "x\\x1b[2J");
        assert_eq!(csv_cell("a = b"), "a = b");
        assert_eq!(csv_cell("-"), "-");
    }
}
