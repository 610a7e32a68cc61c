//! KDL syntax errors, with tfctl's own hints for the mistakes people make most.

use kdl::{KdlDocument, KdlError};
use miette::SourceSpan;

use crate::diag::{Problem, Source};

/// Parses `text` as KDL 2.0, turning every syntax error into a problem.
pub fn parse(src: &Source, text: &str) -> Result<KdlDocument, Vec<Problem>> {
    // The parser is not ours: a panic in it must not take tfctl down.
    let parsed = std::panic::catch_unwind(|| KdlDocument::parse_v2(text));
    match parsed {
        Ok(Ok(doc)) => Ok(doc),
        Ok(Err(e)) => Err(problems(src, text, &e)),
        Err(_) => Err(vec![Problem::new("tfctl::kdl-syntax", src, SourceSpan::from(0..0), "the KDL parser failed on this file")
            .label("somewhere in this file")
            .help("check the file's syntax against https://kdl.dev (KDL 2.0)")]),
    }
}

fn problems(src: &Source, text: &str, e: &KdlError) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    for d in &e.diagnostics {
        let span = clamp(d.span, text.len());
        let at = text.get(span.offset()..).unwrap_or("");
        let word: String = at.chars().take_while(|c| !c.is_whitespace() && !matches!(c, ';' | '{' | '}' | '=' | '"')).collect();
        let message = d.message.clone().unwrap_or_else(|| "invalid KDL".to_string());
        let mut p = Problem::new("tfctl::kdl-syntax", src, span, message)
            .label(d.label.clone().unwrap_or_else(|| "here".to_string()));
        if let Some(h) = &d.help {
            p = p.help(h.clone());
        }
        if let Some(hint) = hint(&word, text, span.offset()) {
            p.code = hint.0;
            p.help = Some(hint.1);
            if matches!(hint.0, "tfctl::kdl-v1-keyword") {
                p.message = format!("`{word}` is KDL 1 syntax");
                p.label = "KDL 1 keyword".to_string();
                p.span = SourceSpan::from(span.offset()..span.offset() + word.len());
            } else if matches!(hint.0, "tfctl::unquoted-path") {
                p.message = format!("the path `{word}` must be quoted");
                p.label = "unquoted path".to_string();
                p.span = SourceSpan::from(span.offset()..span.offset() + word.len());
            }
        }
        // One parse error often yields several diagnostics at one place: keep the first.
        if out.iter().any(|o| o.span.offset() == p.span.offset() && o.code == p.code) {
            continue;
        }
        out.push(p);
    }
    if out.is_empty() {
        out.push(
            Problem::new("tfctl::kdl-syntax", src, SourceSpan::from(0..0), "invalid KDL")
                .help("check the file's syntax against https://kdl.dev (KDL 2.0)"),
        );
    }
    out
}

fn hint(word: &str, text: &str, offset: usize) -> Option<(&'static str, String)> {
    match word {
        "true" | "false" | "null" | "inf" | "-inf" | "nan" => {
            return Some(("tfctl::kdl-v1-keyword", format!("KDL 2 writes keywords with a `#`: #{word}")));
        }
        _ => {}
    }
    let pathish = word.starts_with("./")
        || word.starts_with("../")
        || word.starts_with('~')
        || (word.starts_with('/') && !word.starts_with("//") && !word.starts_with("/*") && !word.starts_with("/-"));
    if pathish && word.len() > 1 {
        return Some(("tfctl::unquoted-path", format!("write paths as strings: \"{word}\"")));
    }
    // A property written `key = value` with spaces, or `key="a" "b"` leftovers, are the parser's
    // business; so is everything else.
    let _ = (text, offset);
    None
}

fn clamp(span: SourceSpan, len: usize) -> SourceSpan {
    let start = span.offset().min(len);
    let end = (span.offset() + span.len()).min(len).max(start);
    SourceSpan::from(start..end)
}
