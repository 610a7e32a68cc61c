//! Variables in string values (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:?message}`, `$$`) and
//! the `.env` / `env-file` format, following Docker Compose's rules.

use std::collections::HashMap;

use miette::SourceSpan;

use crate::diag::{Problem, Source};

/// Where variables come from: the process environment first, then the `.env` file beside the
/// app file.
pub struct Vars<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    dotenv: HashMap<String, String>,
}

impl<'a> Vars<'a> {
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Vars {
            env,
            dotenv: HashMap::new(),
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        (self.env)(name).or_else(|| self.dotenv.get(name).cloned())
    }

    /// Adds the variables of a `.env` file; the process environment still wins.
    pub fn add_dotenv(&mut self, vars: Vec<(String, String)>) {
        self.dotenv.extend(vars);
    }
}

/// Why a string could not be expanded; `start..end` are byte offsets in the string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarError {
    pub start: usize,
    pub end: usize,
    pub kind: VarErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarErrorKind {
    /// `$VAR` or `${VAR}` with the variable unset.
    Unset(String),
    /// `${VAR:?message}` / `${VAR?message}` with the variable unset (or empty, for `:?`).
    Required(String, String),
    /// Not a valid variable reference.
    Syntax(String),
}

impl VarError {
    pub fn to_problem(&self, src: &Source, span: SourceSpan) -> Problem {
        match &self.kind {
            VarErrorKind::Unset(name) => Problem::new(
                "tfctl::unset-variable",
                src,
                span,
                format!("variable `{name}` is not set"),
            )
            .label("unset variable")
            .help(format!(
                "set {name} in the environment or in the .env file beside the app file, give a default with \
                 ${{{name}:-default}}, or write $$ for a literal $"
            )),
            VarErrorKind::Required(name, message) => {
                let msg = if message.is_empty() {
                    format!("variable `{name}` is required")
                } else {
                    format!("variable `{name}` is required: {message}")
                };
                Problem::new("tfctl::required-variable", src, span, msg)
                    .label("required here")
                    .help(format!("set {name} in the environment or in the .env file beside the app file"))
            }
            VarErrorKind::Syntax(what) => Problem::new("tfctl::invalid-variable", src, span, what.clone())
                .label("not a valid variable reference")
                .help("write $VAR, ${VAR}, ${VAR:-default} or ${VAR:?message}; $$ is a literal $"),
        }
    }
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Expands the variables in `s`; the first error stops it.
pub fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, VarError> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut lit = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&s[lit..i]);
        let start = i;
        match b.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let close = matching_brace(b, i + 2).ok_or_else(|| VarError {
                    start,
                    end: b.len(),
                    kind: VarErrorKind::Syntax("`${` is not closed by `}`".to_string()),
                })?;
                let inner = &s[i + 2..close];
                let value = expand_braced(inner, lookup).map_err(|mut e| {
                    if e.start == usize::MAX {
                        // An error about the whole `${...}`.
                        e.start = start;
                        e.end = close + 1;
                    } else {
                        e.start += i + 2;
                        e.end += i + 2;
                    }
                    e
                })?;
                out.push_str(&value);
                i = close + 1;
            }
            Some(&c) if is_name_start(c) => {
                let mut j = i + 1;
                while j < b.len() && is_name_char(b[j]) {
                    j += 1;
                }
                let name = &s[i + 1..j];
                let value = lookup(name).ok_or_else(|| VarError {
                    start,
                    end: j,
                    kind: VarErrorKind::Unset(name.to_string()),
                })?;
                out.push_str(&value);
                i = j;
            }
            _ => {
                let end = s[i + 1..]
                    .chars()
                    .next()
                    .map_or(i + 1, |c| i + 1 + c.len_utf8());
                return Err(VarError {
                    start,
                    end,
                    kind: VarErrorKind::Syntax("a `$` that starts no variable".to_string()),
                });
            }
        }
        lit = i;
    }
    out.push_str(&s[lit..]);
    Ok(out)
}

/// The index of the `}` closing a `${` whose content starts at `from`, counting nested `${`.
fn matching_brace(b: &[u8], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Expands the inside of `${...}`. Errors with `start == usize::MAX` concern the whole reference.
fn expand_braced(inner: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, VarError> {
    let whole = |kind| VarError {
        start: usize::MAX,
        end: 0,
        kind,
    };
    let b = inner.as_bytes();
    if b.is_empty() || !is_name_start(b[0]) {
        return Err(whole(VarErrorKind::Syntax(format!(
            "`${{{inner}}}` does not start with a variable name"
        ))));
    }
    let mut j = 1;
    while j < b.len() && is_name_char(b[j]) {
        j += 1;
    }
    let name = &inner[..j];
    let rest = &inner[j..];
    let value = lookup(name);
    let (colon, op_rest) = match rest.strip_prefix(':') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    // "Set" for the `:` forms means set and not empty.
    let set = match &value {
        Some(v) => !(colon && v.is_empty()),
        None => false,
    };
    let arg_offset = j + usize::from(colon) + 1;
    let expand_arg = |arg: &str| {
        expand(arg, lookup).map_err(|mut e| {
            e.start += arg_offset;
            e.end += arg_offset;
            e
        })
    };
    if rest.is_empty() {
        return value.ok_or_else(|| whole(VarErrorKind::Unset(name.to_string())));
    }
    match op_rest.as_bytes().first() {
        Some(b'-') => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                expand_arg(&op_rest[1..])
            }
        }
        Some(b'?') => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                let message = expand_arg(&op_rest[1..])?;
                Err(whole(VarErrorKind::Required(name.to_string(), message)))
            }
        }
        Some(b'+') => {
            if set {
                expand_arg(&op_rest[1..])
            } else {
                Ok(String::new())
            }
        }
        _ => Err(whole(VarErrorKind::Syntax(format!(
            "`${{{inner}}}`: after the name comes `}}`, `:-`, `-`, `:?`, `?`, `:+` or `+`"
        )))),
    }
}

/// Reads a `.env` / `env-file` file: `KEY=VALUE` lines, `#` comments, an optional `export `,
/// values unquoted (an inline ` #` starts a comment), in single quotes (literal) or in double
/// quotes (with `\n`, `\t`, `\\`, `\"` escapes); unquoted and double-quoted values are expanded
/// with the variables known so far. A bare `KEY` takes the variable from `lookup`, if set.
pub fn parse_dotenv(
    src: &Source,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> (Vec<(String, String)>, Vec<Problem>) {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut problems = Vec::new();
    let mut line_start = 0;
    for raw in text.split_inclusive('\n') {
        let at = line_start;
        line_start += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = trimmed
            .strip_prefix("export ")
            .map_or(trimmed, str::trim_start);
        let (key, value) = match body.split_once('=') {
            Some((k, v)) => (k.trim_end(), Some(v)),
            None => (body.trim_end(), None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            let span = SourceSpan::from(at..at + line.len());
            problems.push(
                Problem::new("tfctl::invalid-env-file", src, span, "expected KEY=VALUE")
                    .label("not a KEY=VALUE line")
                    .help("write one KEY=VALUE per line; lines starting with # are comments"),
            );
            continue;
        }
        let Some(value) = value else {
            // A bare KEY passes the variable through from the environment.
            if let Some(v) = lookup(key) {
                vars.push((key.to_string(), v));
            }
            continue;
        };
        let value = value.trim_start();
        // Byte offset of the value in `text`: both are slices of it.
        let value_at = value.as_ptr() as usize - text.as_ptr() as usize;
        let known = |name: &str| {
            lookup(name).or_else(|| {
                vars.iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })
        };
        match dotenv_value(value, &known) {
            Ok(v) => vars.push((key.to_string(), v)),
            Err(DotenvError::Unclosed(what)) => {
                let span = SourceSpan::from(value_at..value_at + value.len());
                problems.push(
                    Problem::new(
                        "tfctl::invalid-env-file",
                        src,
                        span,
                        format!("a {what} value is not closed"),
                    )
                    .label("unclosed quote")
                    .help("close the quote on the same line"),
                );
            }
            Err(DotenvError::Var(e)) => {
                let span = SourceSpan::from(value_at + e.start..value_at + e.end.max(e.start));
                problems.push(e.to_problem(src, span));
            }
        }
    }
    (
        vars,
        problems
            .into_iter()
            .map(|p| without_snippet(p, text))
            .collect(),
    )
}

enum DotenvError {
    Unclosed(&'static str),
    /// Offsets are relative to the value (for double-quoted values: the whole value).
    Var(VarError),
}

/// One `.env` value (after `=` and leading blanks): quoted literally, double-quoted with escapes
/// and variables, or unquoted with variables up to an inline comment.
fn dotenv_value(
    value: &str,
    known: &dyn Fn(&str) -> Option<String>,
) -> Result<String, DotenvError> {
    if let Some(q) = value.strip_prefix('\'') {
        return q
            .find('\'')
            .map(|end| q[..end].to_string())
            .ok_or(DotenvError::Unclosed("single-quoted"));
    }
    if let Some(q) = value.strip_prefix('"') {
        let unescaped = double_quoted(q).ok_or(DotenvError::Unclosed("double-quoted"))?;
        // Escapes shift offsets: an error covers the whole value.
        return expand(&unescaped, known).map_err(|mut e| {
            e.start = 0;
            e.end = value.len();
            DotenvError::Var(e)
        });
    }
    let unquoted = match value.find(" #").or_else(|| value.find("\t#")) {
        Some(c) => &value[..c],
        None => value,
    };
    expand(unquoted.trim_end(), known).map_err(DotenvError::Var)
}

/// `.env` files often hold passwords: a problem in one names the file, line and column, but
/// shows none of its lines.
fn without_snippet(mut p: Problem, text: &str) -> Problem {
    let before = text.get(..p.span.offset()).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    let name = p.file_name().unwrap_or(".env").to_string();
    p.message = format!("{name}:{line}:{col}: {}", p.message);
    p.src = None;
    p.related_spans.clear();
    p
}

/// The content of a double-quoted `.env` value (after the opening quote), unescaped; `None` when
/// the closing quote is missing.
fn double_quoted(q: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = q.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/root".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn compose_forms() {
        assert_eq!(expand("a $HOME b", &env).unwrap(), "a /root b");
        assert_eq!(expand("${HOME}x", &env).unwrap(), "/rootx");
        assert_eq!(expand("${NOPE:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand("${EMPTY:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand("${EMPTY-dflt}", &env).unwrap(), "");
        assert_eq!(expand("${NOPE:-${HOME}/x}", &env).unwrap(), "/root/x");
        assert_eq!(expand("${HOME:+yes}${NOPE:+no}", &env).unwrap(), "yes");
        assert_eq!(expand("$$TFCTL_IP", &env).unwrap(), "$TFCTL_IP");
        assert_eq!(expand("cost: $$5", &env).unwrap(), "cost: $5");
    }

    #[test]
    fn errors_carry_their_place() {
        let e = expand("x $NOPE y", &env).unwrap_err();
        assert_eq!((e.start, e.end), (2, 7));
        assert_eq!(e.kind, VarErrorKind::Unset("NOPE".into()));
        let e = expand("${NOPE:?give it}", &env).unwrap_err();
        assert_eq!(
            e.kind,
            VarErrorKind::Required("NOPE".into(), "give it".into())
        );
        assert_eq!((e.start, e.end), (0, 16));
        let e = expand("${X:-$NOPE}", &env).unwrap_err();
        assert_eq!((e.start, e.end), (5, 10));
        assert!(matches!(
            expand("a $ b", &env).unwrap_err().kind,
            VarErrorKind::Syntax(_)
        ));
        assert!(matches!(
            expand("${HOME", &env).unwrap_err().kind,
            VarErrorKind::Syntax(_)
        ));
        assert!(matches!(
            expand("${}", &env).unwrap_err().kind,
            VarErrorKind::Syntax(_)
        ));
        assert!(matches!(
            expand("${A!b}", &env).unwrap_err().kind,
            VarErrorKind::Syntax(_)
        ));
    }

    #[test]
    fn dotenv_lines() {
        let text =
            "# c\nA=1\nexport B = two # note\nC='lit $A'\nD=\"x\\ny $A\"\nE=${A}${B}\nHOME\n";
        let src = crate::diag::source(".env", text);
        let (vars, problems) = parse_dotenv(&src, text, &env);
        assert!(problems.is_empty(), "{problems:?}");
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("A"), Some("1"));
        assert_eq!(get("B"), Some("two"));
        assert_eq!(get("C"), Some("lit $A"));
        assert_eq!(get("D"), Some("x\ny 1"));
        assert_eq!(get("E"), Some("1two"));
        assert_eq!(get("HOME"), Some("/root"));
    }
}
