//! KDL syntax errors, with tfctl's own hints for the mistakes people make most.

use kdl::{KdlDocument, KdlError};
use miette::SourceSpan;

use crate::diag::{Problem, Source};

/// The KDL parser recurses once per `{` level, using a few KiB of stack each: it runs on a thread
/// of its own with this much stack (reserved, not committed), which holds over 20,000 levels.
const PARSER_STACK: usize = 256 << 20;
/// Files with at most this many `{` cannot nest deeper than the parser's stack holds.
const UNCHECKED_BRACES: usize = 10_000;
/// Deeper nesting than this is refused before parsing (app files need three levels).
pub const MAX_DEPTH: usize = 64;

/// Parses `text` as KDL 2.0, turning every syntax error into a problem.
pub fn parse(src: &Source, text: &str) -> Result<KdlDocument, Vec<Problem>> {
    if let Some(p) = too_deep(src, text) {
        return Err(vec![p]);
    }
    let failed = |why: &str| {
        vec![Problem::new(
            "tfctl::kdl-syntax",
            src,
            SourceSpan::from(0..0),
            format!("the KDL parser failed on this file: {why}"),
        )
        .label("somewhere in this file")
        .help("check the file's syntax against https://kdl.dev (KDL 2.0)")]
    };
    let parsed = std::thread::scope(|scope| {
        let parser = std::thread::Builder::new()
            .name("kdl-parse".to_string())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, || {
                // A document deeper than MAX_DEPTH is dropped here, on the big stack: dropping
                // it recurses as deep as parsing did.
                KdlDocument::parse_v2(text).map(|doc| match deepest(&doc, 1) {
                    Some(span) => Err(span),
                    None => Ok(doc),
                })
            });
        // A panic in the parser (not ours) comes back as an error from join, not as tfctl's end.
        parser.map(|p| p.join())
    });
    match parsed {
        Ok(Ok(Ok(Ok(doc)))) => Ok(doc),
        Ok(Ok(Ok(Err(span)))) => Err(vec![deep_problem(
            src,
            span,
            format!("blocks are nested more than {MAX_DEPTH} deep"),
        )]),
        Ok(Ok(Err(e))) => Err(problems(src, text, &e)),
        Ok(Err(_)) => Err(failed("it panicked")),
        Err(e) => Err(failed(&format!("cannot start its thread: {e}"))),
    }
}

/// Refuses nesting deeper than `MAX_DEPTH`, which would exhaust the parser's stack. Braces in
/// strings and comments do not count; when the scan cannot tell (an unclosed multi-line string
/// or comment), every brace counts.
fn too_deep(src: &Source, text: &str) -> Option<Problem> {
    if text.bytes().filter(|b| *b == b'{').count() <= UNCHECKED_BRACES {
        return None;
    }
    let (depth, at) = match max_depth(text.as_bytes()) {
        Some(d) if d.0 <= MAX_DEPTH => return None,
        Some(d) => d,
        None => (usize::MAX, 0),
    };
    let msg = if depth == usize::MAX {
        format!("the file has more than {UNCHECKED_BRACES} `{{` and an unclosed string or comment")
    } else {
        format!("blocks are nested {depth} deep")
    };
    Some(deep_problem(
        src,
        SourceSpan::from(at..at + usize::from(at < text.len())),
        msg,
    ))
}

fn deep_problem(src: &Source, span: SourceSpan, msg: String) -> Problem {
    Problem::new("tfctl::too-deep", src, span, msg)
        .label(format!("more than {MAX_DEPTH} levels deep"))
        .help("app files nest three levels at most (container, health or on, and their nodes)")
}

/// The span of the first node deeper than `MAX_DEPTH`, if any.
fn deepest(doc: &KdlDocument, level: usize) -> Option<SourceSpan> {
    for n in doc.nodes() {
        if let Some(children) = n.children() {
            if level > MAX_DEPTH {
                return Some(n.name().span());
            }
            if let Some(span) = deepest(children, level + 1) {
                return Some(span);
            }
        }
    }
    None
}

/// The deepest `{` nesting outside strings and comments, and where it is first reached; `None`
/// when a multi-line string or block comment is not closed.
fn max_depth(b: &[u8]) -> Option<(usize, usize)> {
    let (mut depth, mut max, mut at) = (0usize, 0usize, 0usize);
    let mut i = 0;
    let find = |from: usize, pat: &[u8]| {
        b.get(from..)
            .and_then(|rest| rest.windows(pat.len()).position(|w| w == pat))
            .map(|p| from + p)
    };
    while i < b.len() {
        match b[i] {
            b'{' => {
                depth += 1;
                if depth > max {
                    max = depth;
                    at = i;
                }
            }
            b'}' => depth = depth.saturating_sub(1),
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i = find(i, b"\n").unwrap_or(b.len());
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // Block comments nest.
                let mut level = 1;
                i += 2;
                while level > 0 {
                    match (b.get(i)?, b.get(i + 1)) {
                        (b'/', Some(b'*')) => {
                            level += 1;
                            i += 1;
                        }
                        (b'*', Some(b'/')) => {
                            level -= 1;
                            i += 1;
                        }
                        _ => {}
                    }
                    i += 1;
                }
                continue;
            }
            b'#' | b'"' => {
                let hashes = b[i..].iter().take_while(|c| **c == b'#').count();
                if b.get(i + hashes) != Some(&b'"') {
                    i += hashes.max(1);
                    continue;
                }
                let open = i + hashes;
                let mut close = vec![b'"'];
                close.extend(std::iter::repeat_n(b'#', hashes));
                if b.get(open..open + 3) == Some(b"\"\"\"") {
                    let mut end = vec![b'"', b'"', b'"'];
                    end.extend(std::iter::repeat_n(b'#', hashes));
                    i = find(open + 3, &end)? + end.len();
                    continue;
                }
                // A single-line string ends at its closing quote, or at a newline (where KDL
                // reports it unclosed and carries on).
                let mut j = open + 1;
                while j < b.len() && b[j] != b'\n' {
                    if hashes == 0 && b[j] == b'\\' {
                        j += 2;
                        continue;
                    }
                    if b[j..].starts_with(&close) {
                        j += close.len();
                        break;
                    }
                    j += 1;
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Some((max, at))
}

fn problems(src: &Source, text: &str, e: &KdlError) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    for d in &e.diagnostics {
        let span = clamp(d.span, text.len());
        let at = text.get(span.offset()..).unwrap_or("");
        let word: String = at
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, ';' | '{' | '}' | '=' | '"'))
            .collect();
        let message = d
            .message
            .clone()
            .unwrap_or_else(|| "invalid KDL".to_string());
        let mut p = Problem::new("tfctl::kdl-syntax", src, span, message)
            .label(d.label.clone().unwrap_or_else(|| "here".to_string()));
        if let Some(h) = &d.help {
            p = p.help(h.clone());
        }
        if let Some((code, message, label, help)) = hint(&word, text, span.offset()) {
            p.code = code;
            p.message = message;
            p.label = label.to_string();
            p.help = Some(help);
            p.span = SourceSpan::from(span.offset()..span.offset() + word.len());
        }
        // One parse error often yields several diagnostics at one place: keep the first.
        if out
            .iter()
            .any(|o| o.span.offset() == p.span.offset() && o.code == p.code)
        {
            continue;
        }
        out.push(p);
    }
    if out.is_empty() {
        out.push(
            Problem::new(
                "tfctl::kdl-syntax",
                src,
                SourceSpan::from(0..0),
                "invalid KDL",
            )
            .help("check the file's syntax against https://kdl.dev (KDL 2.0)"),
        );
    }
    out
}

/// tfctl's own reading of a syntax error at `word`: (code, message, label, help).
fn hint(
    word: &str,
    text: &str,
    offset: usize,
) -> Option<(&'static str, String, &'static str, String)> {
    match word {
        "true" | "false" | "null" | "inf" | "-inf" | "nan" => {
            return Some((
                "tfctl::kdl-v1-keyword",
                format!("`{word}` is KDL 1 syntax"),
                "KDL 1 keyword",
                format!("KDL 2 writes keywords with a `#`: #{word}"),
            ));
        }
        _ => {}
    }
    let line_start = text
        .get(..offset)
        .map_or(0, |b| b.rfind('\n').map_or(0, |i| i + 1));
    let at_line_start = text
        .get(line_start..offset)
        .is_some_and(|b| b.trim().is_empty());
    if word.starts_with('#') && at_line_start && !word.starts_with("#\"") {
        return Some((
            "tfctl::kdl-comment",
            "`#` does not start a comment in KDL".to_string(),
            "not a comment",
            "KDL comments start with `//` (or `/-` to comment out a node)".to_string(),
        ));
    }
    let comment = word.starts_with("//") || word.starts_with("/*") || word.starts_with("/-");
    let pathish = word.starts_with("./")
        || word.starts_with("../")
        || word.starts_with('~')
        || word.starts_with('/');
    if pathish && !comment && word.len() > 1 {
        return Some((
            "tfctl::unquoted-path",
            format!("the path `{word}` must be quoted"),
            "unquoted path",
            format!("write paths as strings: \"{word}\""),
        ));
    }
    if word.contains('/') && !comment {
        return Some((
            "tfctl::unquoted-string",
            format!("`{word}` must be quoted"),
            "unquoted string",
            format!("only simple words may go without quotes; write \"{word}\""),
        ));
    }
    if let Some((host, container)) = word.split_once(':') {
        if !host.is_empty()
            && host.bytes().all(|c| c.is_ascii_digit())
            && container.bytes().all(|c| c.is_ascii_digit())
        {
            return Some((
                "tfctl::publish-syntax",
                format!("`{word}` is Docker's port syntax"),
                "HOST:CONTAINER",
                format!("write publish {host} to={container}"),
            ));
        }
    }
    None
}

fn clamp(span: SourceSpan, len: usize) -> SourceSpan {
    let start = span.offset().min(len);
    let end = (span.offset() + span.len()).min(len).max(start);
    SourceSpan::from(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_ignores_strings_and_comments() {
        assert_eq!(max_depth(b"a { b { c; }; }").map(|d| d.0), Some(2));
        assert_eq!(
            max_depth(b"a \"{{{\" /* { /* { */ { */ // {{\nb { }").map(|d| d.0),
            Some(1)
        );
        assert_eq!(
            max_depth(b"a #\"{\"{\"# b \"\"\"\n{{\n\"\"\" { }").map(|d| d.0),
            Some(1)
        );
        // An unclosed single-line string ends at the newline, as KDL's recovery does.
        assert_eq!(max_depth(b"a \"x\n{ {").map(|d| d.0), Some(2));
        assert_eq!(max_depth(b"a \"\"\"\n{"), None);
        assert_eq!(max_depth(b"/* {"), None);
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let src = crate::diag::source("deep.kdl", "");
        let deep = format!("app \"a\"\n{}{}", "a {".repeat(20_000), "}".repeat(20_000));
        let err = parse(&src, &deep).unwrap_err();
        assert_eq!(err[0].code, "tfctl::too-deep");
        // Within the unchecked budget the parser's own thread holds the depth.
        let parsed_then_refused = format!("{}{}", "a {".repeat(9_000), "}".repeat(9_000));
        assert_eq!(
            parse(&src, &parsed_then_refused).unwrap_err()[0].code,
            "tfctl::too-deep"
        );
        let ok = format!("{}{}", "a {".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert!(parse(&src, &ok).is_ok());
    }
}
