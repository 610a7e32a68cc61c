//! Reading KDL nodes against the vocabulary: the checks every node gets (known name, argument
//! count and kinds, known properties, no stray block, no second copy of a single node), and
//! typed accessors that expand variables and report bad values at their place in the file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;

use crate::diag::{Diagnostics, Problem, Source};
use crate::values::{self, Bad};
use crate::vars::{self, Vars};
use crate::vocab::{self, Ctx, Kind, NodeSpec};

/// The state of one load: the file, where its relative paths start, the variables, and the
/// problems found so far.
pub struct Cx<'a> {
    pub src: Source,
    pub dir: PathBuf,
    pub vars: Vars<'a>,
    pub diags: Diagnostics,
}

/// A node that passed the generic checks, with its spec.
#[derive(Clone, Copy)]
pub struct Node<'d> {
    pub spec: &'static NodeSpec,
    pub kdl: &'d KdlNode,
}

impl<'d> Node<'d> {
    pub fn name_span(&self) -> SourceSpan {
        self.kdl.name().span()
    }

    pub fn args(&self) -> impl Iterator<Item = &'d KdlEntry> {
        self.kdl.entries().iter().filter(|e| e.name().is_none())
    }

    pub fn arg(&self, i: usize) -> Option<&'d KdlEntry> {
        self.args().nth(i)
    }

    /// The last occurrence of a property (KDL's rule: the rightmost wins).
    pub fn prop(&self, name: &str) -> Option<&'d KdlEntry> {
        self.kdl
            .entries()
            .iter()
            .rev()
            .find(|e| e.name().is_some_and(|n| n.value() == name))
    }

    pub fn props(&self) -> impl Iterator<Item = &'d KdlEntry> {
        self.kdl.entries().iter().filter(|e| e.name().is_some())
    }
}

/// The span of an entry's value alone (without `name=`).
pub fn value_span(e: &KdlEntry) -> SourceSpan {
    let span = e.span();
    match (e.name(), e.format()) {
        (Some(_), Some(f)) if f.value_repr.len() <= span.len() => SourceSpan::from(
            span.offset() + span.len() - f.value_repr.len()..span.offset() + span.len(),
        ),
        _ => span,
    }
}

/// The file span of bytes `start..end` of a string value, when the value is written plainly
/// (no escapes, not multi-line); otherwise the whole value's span.
pub fn sub_span(e: &KdlEntry, raw: &str, start: usize, end: usize) -> SourceSpan {
    let whole = value_span(e);
    let Some(f) = e.format() else { return whole };
    let repr = f.value_repr.as_str();
    let open = repr.bytes().take_while(|c| *c == b'#').count() + 1;
    let plain = repr.len() >= open * 2
        && repr.get(open..repr.len() - open) == Some(raw)
        && repr.as_bytes().get(open - 1) == Some(&b'"')
        && !repr.starts_with("\"\"\"");
    if plain && start <= end && end <= raw.len() {
        SourceSpan::from(whole.offset() + open + start..whole.offset() + open + end)
    } else {
        whole
    }
}

/// Whether a value was written as a bare identifier (no quotes), as a forgotten `;` leaves it.
fn is_bare(e: &KdlEntry) -> bool {
    e.format()
        .is_some_and(|f| !f.value_repr.starts_with(['"', '#']) && !f.value_repr.is_empty())
        && matches!(e.value(), KdlValue::String(_))
}

fn value_kind_name(v: &KdlValue) -> &'static str {
    match v {
        KdlValue::String(_) => "a string",
        KdlValue::Integer(_) => "a whole number",
        KdlValue::Float(_) => "a decimal number",
        KdlValue::Bool(_) => "a boolean",
        KdlValue::Null => "#null",
    }
}

fn repr(e: &KdlEntry) -> String {
    e.format()
        .map(|f| f.value_repr.clone())
        .unwrap_or_else(|| e.value().to_string())
}

impl<'a> Cx<'a> {
    pub fn problem(
        &self,
        code: &'static str,
        span: SourceSpan,
        message: impl Into<String>,
    ) -> Problem {
        Problem::new(code, &self.src, span, message)
    }

    pub fn push(&mut self, p: Problem) {
        self.diags.push(p);
    }

    pub fn bad(&mut self, b: Bad, span: SourceSpan, label: &str) {
        let p = self
            .problem(b.code, span, b.message)
            .label(label)
            .help(b.help);
        self.push(p);
    }

    /// Checks the nodes of a block against the vocabulary of `ctx` and returns those it knows.
    pub fn nodes<'d>(&mut self, doc: Option<&'d KdlDocument>, ctx: Ctx) -> Vec<Node<'d>> {
        let mut out = Vec::new();
        let mut seen: HashMap<&'static str, SourceSpan> = HashMap::new();
        for n in doc.map(|d| d.nodes()).unwrap_or_default() {
            let name = n.name().value();
            let Some(spec) = vocab::lookup(ctx, name) else {
                self.unknown_node(n, ctx);
                continue;
            };
            if !spec.repeatable {
                if let Some(first) = seen.get(spec.name) {
                    let p = self
                        .problem(
                            "tfctl::duplicate-node",
                            n.name().span(),
                            format!("`{name}` is given twice"),
                        )
                        .label(format!("second `{name}`"))
                        .also(*first, "first given here")
                        .help(format!(
                            "`{name}` may appear only once {}: remove one",
                            ctx.describe()
                        ));
                    self.push(p);
                    continue;
                }
                seen.insert(spec.name, n.name().span());
            }
            let node = Node { spec, kdl: n };
            if !self.glued(node, ctx) {
                self.check_shape(node);
            }
            out.push(node);
        }
        out
    }

    fn unknown_node(&mut self, n: &KdlNode, ctx: Ctx) {
        let name = n.name().value();
        let mut help = match vocab::did_you_mean(name, vocab::nodes_in(ctx).map(|s| s.name)) {
            Some(s) => format!("did you mean `{s}`?"),
            None => {
                let names: Vec<&str> = vocab::nodes_in(ctx).map(|s| s.name).collect();
                format!(
                    "{} the nodes are: {}",
                    capitalise(ctx.describe()),
                    names.join(", ")
                )
            }
        };
        if let Some(other) = vocab::NODES.iter().find(|s| s.name == name && s.ctx != ctx) {
            help = format!(
                "`{name}` belongs {}, not {}",
                other.ctx.describe(),
                ctx.describe()
            );
        }
        let p = self
            .problem(
                "tfctl::unknown-node",
                n.name().span(),
                format!("unknown node `{name}`"),
            )
            .label("not known here")
            .help(help);
        self.push(p);
    }

    /// A forgotten `;` between two settings on one line makes the second setting's name an
    /// argument of the first: report that rather than a confusing argument count.
    fn glued(&mut self, node: Node<'_>, ctx: Ctx) -> bool {
        for e in node.args() {
            if let KdlValue::String(s) = e.value() {
                if is_bare(e) && vocab::lookup(ctx, s).is_some() {
                    let p = self
                        .problem(
                            "tfctl::missing-separator",
                            e.span(),
                            format!("`{s}` looks like a new node glued to `{}`", node.spec.name),
                        )
                        .label(format!("`{s}` starts a new node"))
                        .help(format!(
                            "put `{s}` on its own line, or separate the two with `;`"
                        ));
                    self.push(p);
                    return true;
                }
            }
        }
        false
    }

    fn check_shape(&mut self, node: Node<'_>) {
        let spec = node.spec;
        let args: Vec<&KdlEntry> = node.args().collect();
        if !spec.args.accepts(args.len()) {
            let (span, label) = match args.get(spec_max(spec)) {
                Some(extra) => (extra.span(), "unexpected argument"),
                None => (node.name_span(), "missing argument"),
            };
            let synopsis = format!("{} {}", spec.name, spec.synopsis);
            let p = self
                .problem(
                    "tfctl::argument-count",
                    span,
                    format!(
                        "`{}` takes {}, found {}",
                        spec.name,
                        spec.args.describe(),
                        args.len()
                    ),
                )
                .label(label)
                .help(format!("write it as: {}", synopsis.trim_end()));
            self.push(p);
        }
        for (i, e) in args.iter().enumerate() {
            if let Some(kind) = spec.args.kind(i) {
                self.check_kind(e, kind, &format!("`{}`'s argument", spec.name));
            }
        }
        let mut seen: HashMap<&str, SourceSpan> = HashMap::new();
        for e in node.props() {
            let Some(key) = e.name() else { continue };
            let kind = if spec.any_props {
                Kind::Scalar
            } else if let Some(ps) = spec.prop(key.value()) {
                ps.kind
            } else {
                let help = match vocab::did_you_mean(key.value(), spec.props.iter().map(|p| p.name))
                {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if spec.props.is_empty() => format!("`{}` takes no properties", spec.name),
                    None => format!(
                        "`{}` takes: {}",
                        spec.name,
                        spec.props
                            .iter()
                            .map(|p| p.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                let p = self
                    .problem(
                        "tfctl::unknown-property",
                        key.span(),
                        format!("unknown property `{}` on `{}`", key.value(), spec.name),
                    )
                    .label("not known here")
                    .help(help);
                self.push(p);
                continue;
            };
            if let Some(first) = seen.insert(key.value(), key.span()) {
                let p = self
                    .problem(
                        "tfctl::duplicate-property",
                        key.span(),
                        format!("property `{}` is given twice", key.value()),
                    )
                    .label("second one")
                    .also(first, "first given here")
                    .help("remove one of them");
                self.push(p);
            }
            self.check_kind(e, kind, &format!("`{}`", key.value()));
        }
        if let (Some(children), None) = (node.kdl.children(), spec.children) {
            let p = self
                .problem(
                    "tfctl::unexpected-block",
                    children.span(),
                    format!("`{}` takes no `{{ }}` block", spec.name),
                )
                .label("unexpected block")
                .help(format!("write it as: {} {}", spec.name, spec.synopsis));
            self.push(p);
        }
    }

    fn check_kind(&mut self, e: &KdlEntry, kind: Kind, what: &str) {
        let v = e.value();
        let ok = match kind {
            Kind::Str | Kind::Duration => v.is_string(),
            Kind::Int => v.is_integer(),
            Kind::Number => v.is_integer() || v.is_float(),
            Kind::Bool => v.is_bool(),
            Kind::Mode => v.is_integer() && repr(e).starts_with("0o"),
            Kind::Scalar => matches!(
                v,
                KdlValue::String(_) | KdlValue::Integer(_) | KdlValue::Float(_)
            ),
            Kind::PortOrRange | Kind::Size => v.is_integer() || v.is_string(),
        };
        if ok {
            return;
        }
        let span = value_span(e);
        let found = value_kind_name(v);
        let p = match (kind, v) {
            (Kind::Mode, KdlValue::Integer(_) | KdlValue::String(_)) => {
                let digits = repr(e)
                    .trim_matches('"')
                    .trim_start_matches('0')
                    .to_string();
                let example =
                    if !digits.is_empty() && digits.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
                        format!("write 0o{digits}")
                    } else {
                        "write an octal literal such as 0o644".to_string()
                    };
                self.problem(
                    "tfctl::invalid-mode",
                    span,
                    format!("mode `{}` is not an octal literal", repr(e)),
                )
                .label("not octal")
                .help(format!(
                    "{example}: modes are octal, and KDL reads 644 as decimal"
                ))
            }
            (Kind::Duration, KdlValue::Integer(n)) => self
                .problem("tfctl::invalid-duration", span, format!("{what}: `{n}` has no unit"))
                .label("which unit?")
                .help(format!("write it as a string with a unit: \"{n}s\" for seconds, \"{n}ms\" for milliseconds")),
            (Kind::Bool, KdlValue::String(s)) if s == "true" || s == "false" => self
                .problem(
                    "tfctl::wrong-type",
                    span,
                    format!("{what} must be #true or #false, found the string \"{s}\""),
                )
                .label("a string")
                .help(format!("KDL 2 writes booleans as #{s}")),
            (Kind::Int | Kind::Number | Kind::PortOrRange, KdlValue::String(s))
                if s.trim().parse::<f64>().is_ok() =>
            {
                self.problem(
                    "tfctl::wrong-type",
                    span,
                    format!("{what} must be {}, found a string", kind.describe()),
                )
                .label("a string")
                .help(format!("write the number without quotes: {}", s.trim()))
            }
            _ => self
                .problem(
                    "tfctl::wrong-type",
                    span,
                    format!("{what} must be {}, found {found}", kind.describe()),
                )
                .label(found)
                .help(format!("write {}", kind.describe())),
        };
        self.push(p);
    }

    // Typed accessors. Each returns `None` when the value is of the wrong kind (already reported
    // by the shape check) or was refused (reported here).

    /// A string value with its variables expanded.
    pub fn str(&mut self, e: Option<&KdlEntry>) -> Option<String> {
        let e = e?;
        let KdlValue::String(raw) = e.value() else {
            return None;
        };
        let lookup = |n: &str| self.vars.get(n);
        match vars::expand(raw, &lookup) {
            Ok(s) => Some(s),
            Err(err) => {
                let span = sub_span(e, raw, err.start, err.end);
                let p = err.to_problem(&self.src, span);
                self.push(p);
                None
            }
        }
    }

    /// A string, or a number as written.
    pub fn scalar(&mut self, e: Option<&KdlEntry>) -> Option<String> {
        let e = e?;
        match e.value() {
            KdlValue::String(_) => self.str(Some(e)),
            KdlValue::Integer(_) | KdlValue::Float(_) => Some(repr(e)),
            _ => None,
        }
    }

    pub fn int(&self, e: Option<&KdlEntry>) -> Option<i128> {
        match e?.value() {
            KdlValue::Integer(i) => Some(*i),
            _ => None,
        }
    }

    pub fn bool(&self, e: Option<&KdlEntry>) -> Option<bool> {
        match e?.value() {
            KdlValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A positive whole number that fits `u64`.
    pub fn positive(&mut self, e: Option<&KdlEntry>, what: &str) -> Option<u64> {
        let e = e?;
        let n = self.int(Some(e))?;
        match u64::try_from(n) {
            Ok(v) if v > 0 => Some(v),
            _ => {
                let p = self
                    .problem(
                        "tfctl::not-positive",
                        value_span(e),
                        format!("{what} must be more than 0, found {n}"),
                    )
                    .label("not positive")
                    .help("write a whole number of 1 or more");
                self.push(p);
                None
            }
        }
    }

    pub fn mode(&mut self, e: Option<&KdlEntry>) -> Option<u32> {
        let e = e?;
        if !repr(e).starts_with("0o") {
            return None;
        }
        let n = self.int(Some(e))?;
        match u32::try_from(n) {
            Ok(m) if m <= 0o7777 => Some(m),
            _ => {
                let p = self
                    .problem(
                        "tfctl::invalid-mode",
                        value_span(e),
                        format!("mode `{}` is out of range", repr(e)),
                    )
                    .label("too large")
                    .help("a mode goes from 0o0 to 0o7777");
                self.push(p);
                None
            }
        }
    }

    pub fn duration(&mut self, e: Option<&KdlEntry>) -> Option<Duration> {
        let e = e?;
        let s = self.str(Some(e))?;
        self.parsed(e, values::parse_duration(&s), "not a duration")
    }

    /// A duration that must be more than zero.
    pub fn positive_duration(&mut self, e: Option<&KdlEntry>, what: &str) -> Option<Duration> {
        let d = self.duration(e)?;
        if d.is_zero() {
            let p = self
                .problem(
                    "tfctl::not-positive",
                    value_span(e?),
                    format!("{what} must be longer than 0"),
                )
                .label("zero")
                .help("write a duration such as \"500ms\" or \"5s\"");
            self.push(p);
            return None;
        }
        Some(d)
    }

    pub fn size(&mut self, e: Option<&KdlEntry>, what: &str) -> Option<u64> {
        let e = e?;
        match e.value() {
            KdlValue::Integer(_) => self.positive(Some(e), what),
            KdlValue::String(_) => {
                let s = self.str(Some(e))?;
                self.parsed(e, values::parse_size(&s), "not a size")
            }
            _ => None,
        }
    }

    /// Reports a refused value at the entry and passes an accepted one on.
    pub fn parsed<T>(&mut self, e: &KdlEntry, r: Result<T, Bad>, label: &str) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(b) => {
                self.bad(b, value_span(e), label);
                None
            }
        }
    }

    /// One of `choices`, reported with the list and a suggestion when it is not.
    pub fn choice(
        &mut self,
        e: Option<&KdlEntry>,
        what: &str,
        choices: &[&'static str],
    ) -> Option<&'static str> {
        let e = e?;
        let s = self.str(Some(e))?;
        if let Some(c) = choices.iter().find(|c| **c == s) {
            return Some(c);
        }
        let list = choices
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let help = match vocab::did_you_mean(&s, choices.iter().copied()) {
            Some(c) => format!("did you mean \"{c}\"? Write one of {list}"),
            None => format!("write one of {list}"),
        };
        let p = self
            .problem(
                "tfctl::invalid-choice",
                value_span(e),
                format!("`{s}` is not a valid {what}"),
            )
            .label("not one of the choices")
            .help(help);
        self.push(p);
        None
    }

    /// A host path, relative to the app file's folder, made absolute.
    pub fn host_path(&self, s: &str) -> PathBuf {
        normalize(&self.dir.join(s))
    }

    /// Checks that a host file the app file names can be read now.
    pub fn readable(&mut self, e: &KdlEntry, path: &std::path::Path, what: &str) -> bool {
        let err = match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Some("it is a directory".to_string()),
            Ok(_) => std::fs::File::open(path).err().map(|e| e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        match err {
            None => true,
            Some(why) => {
                let p = self
                    .problem("tfctl::unreadable-file", value_span(e), format!("cannot read {what} `{}`: {why}", path.display()))
                    .label("cannot be read")
                    .help("relative paths start at the app file's folder; check the path and its permissions");
                self.push(p);
                false
            }
        }
    }
}

/// Removes `.` components and resolves `..` lexically, as Compose does with relative paths.
pub fn normalize(p: &std::path::Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            c => out.push(c.as_os_str()),
        }
    }
    out
}

fn spec_max(spec: &NodeSpec) -> usize {
    match spec.args {
        vocab::Args::None => 0,
        vocab::Args::Exactly(k) => k.len(),
        vocab::Args::OneOrMore(_) => usize::MAX,
        vocab::Args::Between(_, hi, _) => hi,
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
