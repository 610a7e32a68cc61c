//! What tfctl prints: diagnostics for people (miette's graphical report, also off a terminal;
//! colour only on one and never with NO_COLOR) and JSON documents for programs.

use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme};
use serde::Serialize;

/// The handler every diagnostic is rendered with.
pub fn report_handler() -> GraphicalReportHandler {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let theme = if colour { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let width = terminal_width().unwrap_or(100);
    GraphicalReportHandler::new_themed(theme).with_width(width)
}

fn terminal_width() -> Option<usize> {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok())
}

/// Prints `value` as one JSON document carrying `"schema": 1`.
pub fn print_json<T: Serialize>(value: &T) {
    let mut v = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(map) = &mut v {
        map.insert("schema".into(), serde_json::Value::from(1));
    }
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
}
