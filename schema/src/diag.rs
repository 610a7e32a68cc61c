//! Errors in app and config files: each one a miette diagnostic that points into the file.

use std::fmt;
use std::sync::Arc;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan,
};

/// A file the diagnostics point into, shared by all of them.
pub type Source = NamedSource<Arc<str>>;

pub fn source(name: &str, text: &str) -> Source {
    NamedSource::new(name, Arc::<str>::from(text))
}

/// One error in a file: what is wrong (`message`), where (`label` on `span`, the offending
/// occurrence), and what to do (`help`), with a stable `code` such as `tfctl::unknown-node`.
#[derive(Debug, Clone)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
    /// `None` when the file itself could not be read.
    pub src: Option<Source>,
    pub span: SourceSpan,
    pub label: String,
    /// Further places that explain the error (the first definition of a duplicate).
    pub related_spans: Vec<(SourceSpan, String)>,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(
        code: &'static str,
        src: &Source,
        span: SourceSpan,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            code,
            message: message.into(),
            src: Some(src.clone()),
            span,
            label: "here".to_string(),
            related_spans: Vec::new(),
            help: None,
        }
    }

    /// A problem with no place in a file (the file is missing).
    pub fn without_source(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            code,
            message: message.into(),
            src: None,
            span: SourceSpan::from(0..0),
            label: String::new(),
            related_spans: Vec::new(),
            help: None,
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn also(mut self, span: SourceSpan, label: impl Into<String>) -> Self {
        self.related_spans.push((span, label.into()));
        self
    }

    /// The name of the file the problem is in.
    pub fn file_name(&self) -> Option<&str> {
        self.src.as_ref().map(|s| s.name())
    }

    /// Line and column (1-based, columns in characters) of the primary label.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        let text: &str = self.src.as_ref()?.inner();
        let before = text.get(..self.span.offset().min(text.len()))?;
        let line = before.matches('\n').count() + 1;
        let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
            .chars()
            .count()
            + 1;
        Some((line, col))
    }
}

/// For `--format json`: `{"code", "message", "file", "line", "column", "label", "help"}`, with
/// `null` where a problem has no place in a file.
impl serde::Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (line, column) = self.line_col().unzip();
        let mut st = s.serialize_struct("Problem", 7)?;
        st.serialize_field("code", self.code)?;
        st.serialize_field("message", &self.message)?;
        st.serialize_field("file", &self.file_name())?;
        st.serialize_field("line", &line)?;
        st.serialize_field("column", &column)?;
        st.serialize_field("label", &self.src.as_ref().map(|_| &self.label))?;
        st.serialize_field("help", &self.help)?;
        st.end()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.src.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.src.as_ref()?;
        let primary = LabeledSpan::new_primary_with_span(Some(self.label.clone()), self.span);
        let others = self
            .related_spans
            .iter()
            .map(|(span, label)| LabeledSpan::new_with_span(Some(label.clone()), *span));
        Some(Box::new(std::iter::once(primary).chain(others)))
    }
}

/// Every error found in one run over a file, in the order they appear in it.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(transparent)]
pub struct Diagnostics {
    pub problems: Vec<Problem>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn len(&self) -> usize {
        self.problems.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter()
    }

    /// Puts the problems in reading order: by file (in order of first appearance), then by
    /// position. The sort is stable, so problems at one place keep the order they were found in.
    pub fn sort(&mut self) {
        let mut files: Vec<String> = Vec::new();
        for p in &self.problems {
            let name = p.file_name().unwrap_or("").to_string();
            if !files.contains(&name) {
                files.push(name);
            }
        }
        self.problems.sort_by_key(|p| {
            let name = p.file_name().unwrap_or("");
            (files.iter().position(|f| f == name), p.span.offset())
        });
    }

    /// Renders every problem with `handler`, one after another.
    pub fn render_with(&self, handler: &GraphicalReportHandler) -> String {
        let mut out = String::new();
        for p in &self.problems {
            // Writing into a String cannot fail; a failed render still leaves the message.
            if handler.render_report(&mut out, p).is_err() {
                out.push_str(&format!("error[{}]: {}\n", p.code, p.message));
            }
        }
        out
    }

    /// Renders every problem as miette's graphical report without colour, `width` columns wide:
    /// what tests compare and what a log file gets.
    pub fn render_plain(&self, width: usize) -> String {
        let handler =
            GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(width);
        self.render_with(&handler)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self
            .problems
            .first()
            .and_then(|p| p.file_name())
            .unwrap_or("the file");
        match self.problems.len() {
            1 => write!(f, "1 error in {file}"),
            n => write!(f, "{n} errors in {file}"),
        }
    }
}

impl std::error::Error for Diagnostics {}

/// As one diagnostic, `Diagnostics` is a summary whose related diagnostics are the problems,
/// so `miette::Report::new(diags)` shows them all.
impl Diagnostic for Diagnostics {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.problems.iter().map(|p| p as &dyn Diagnostic)))
    }
}

impl From<Problem> for Diagnostics {
    fn from(p: Problem) -> Self {
        Diagnostics { problems: vec![p] }
    }
}
