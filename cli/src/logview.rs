//! How container output is shown. Logs are the container's bytes; a terminal would act on the
//! control characters among them (a window title, a cleared screen, colours, a carriage return
//! that writes over what came before), so what goes to a terminal has them escaped, as
//! journalctl does: each byte of a control character other than tab, and each byte that is not
//! UTF-8, shows as `\xNN`. Sent to a file or a pipe, the bytes go as they came, as `docker logs`
//! writes them, so the output can be processed or saved exactly.
//!
//! A line longer than the log's record size comes in several records (all but the last
//! partial): they are shown as the one line they were.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};

use tfctl_runtime::logs::Stream;

/// `bytes` as text a terminal shows and does not act on.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let hex = |out: &mut String, b: u8| {
        let _ = write!(out, "\\x{b:02x}");
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\t' || !c.is_control() {
                out.push(c);
            } else {
                c.encode_utf8(&mut [0; 4]).bytes().for_each(|b| hex(&mut out, b));
            }
        }
        chunk.invalid().iter().for_each(|&b| hex(&mut out, b));
    }
    out
}

/// One output stream's view of records, from one or several sources (the containers of an app).
pub struct View {
    escape: bool,
    /// The source whose line was left open by a partial record.
    open: Option<String>,
}

impl View {
    pub fn new(escape: bool) -> View {
        View { escape, open: None }
    }

    /// Writes a record of `source`, after `head` when it starts a line. A line left open by
    /// another source is ended first, so each line shown has a single source.
    pub fn write(&mut self, out: &mut impl Write, source: &str, head: &str, text: &[u8], partial: bool) -> io::Result<()> {
        if self.open.as_deref().is_some_and(|s| s != source) {
            out.write_all(b"\n")?;
            self.open = None;
        }
        if self.open.is_none() {
            out.write_all(head.as_bytes())?;
        }
        if self.escape {
            out.write_all(escape(text).as_bytes())?;
        } else {
            out.write_all(text)?;
        }
        if partial {
            self.open = Some(source.to_string());
        } else {
            out.write_all(b"\n")?;
            self.open = None;
        }
        Ok(())
    }
}

/// Views of tfctl's stdout and stderr, where a container's stdout and stderr records go.
pub struct Output {
    out: View,
    err: View,
}

impl Output {
    /// Escaped on the streams that are terminals, as they came on the others (`logs`, `up`).
    pub fn for_terminals() -> Output {
        Output { out: View::new(io::stdout().is_terminal()), err: View::new(io::stderr().is_terminal()) }
    }

    /// As they came everywhere: `run` passes its container's output through, as `docker run`.
    pub fn raw() -> Output {
        Output { out: View::new(false), err: View::new(false) }
    }

    pub fn write(&mut self, stream: Stream, source: &str, head: &str, text: &[u8], partial: bool) -> io::Result<()> {
        match stream {
            Stream::Stdout => {
                let mut out = io::stdout().lock();
                self.out.write(&mut out, source, head, text, partial)?;
                out.flush()
            }
            Stream::Stderr => self.err.write(&mut io::stderr().lock(), source, head, text, partial),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_act_on_and_keeps_text() {
        // A window title (OSC), a cleared screen, a colour, a carriage return, a bell.
        assert_eq!(escape(b"\x1b]0;owned\x07\x1b[2J\x1b[31mred\rover"), r"\x1b]0;owned\x07\x1b[2J\x1b[31mred\x0dover");
        // C1 controls too (CSI as U+009B), DEL, and bytes that are not UTF-8.
        assert_eq!(escape("a\u{9b}2J\x7f".as_bytes()), r"a\xc2\x9b2J\x7f");
        assert_eq!(escape(b"\xff\xfe ok"), r"\xff\xfe ok");
        // Tabs, printable UTF-8 and backslashes stay.
        assert_eq!(escape("col\tcafé ✓ C:\\x".as_bytes()), "col\tcafé ✓ C:\\x");
    }

    #[test]
    fn partial_records_show_as_one_line_and_sources_do_not_share_a_line() {
        let mut out = Vec::new();
        let mut v = View::new(true);
        v.write(&mut out, "web", "web | ", b"aaa", true).unwrap();
        v.write(&mut out, "web", "web | ", b"bbb", false).unwrap();
        v.write(&mut out, "web", "web | ", b"cc\x1b", true).unwrap();
        v.write(&mut out, "db", "db  | ", b"hello", false).unwrap();
        v.write(&mut out, "web", "web | ", b"dd", false).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "web | aaabbb\nweb | cc\\x1b\ndb  | hello\nweb | dd\n");

        // Raw: the bytes as they came, the line joined again.
        let mut out = Vec::new();
        let mut v = View::new(false);
        v.write(&mut out, "", "", b"\xff\x1b[2J", true).unwrap();
        v.write(&mut out, "", "", b"end", false).unwrap();
        assert_eq!(out, b"\xff\x1b[2Jend\n");
    }
}
