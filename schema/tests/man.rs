//! The hand-written man pages document the whole vocabulary: every node of the table in
//! `vocab.rs` has a `.SS NODE` entry under its place's section, every property a `.TP` entry
//! starting `\fBPROPERTY=` inside it, and the pages document nothing the table lacks. Their
//! examples load.

use std::collections::BTreeMap;
use std::path::Path;

use tfctl_schema::vocab::{Ctx, NODES};

/// Node name -> documented property names, per `.SH` section.
type Documented = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn plain(roff: &str) -> String {
    roff.replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fR", "")
        .replace("\\fI", "")
        .replace("\\fP", "")
}

fn read(page: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../man")
            .join(page),
    )
    .unwrap()
}

fn documented(page: &str) -> Documented {
    let mut out = Documented::new();
    let (mut section, mut node) = (String::new(), None::<String>);
    let lines: Vec<&str> = page.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(s) = line.strip_prefix(".SH ") {
            section = s.trim().trim_matches('"').to_string();
            node = None;
        } else if let Some(s) = line.strip_prefix(".SS ") {
            let name = plain(s).split_whitespace().next().unwrap_or("").to_string();
            out.entry(section.clone())
                .or_default()
                .entry(name.clone())
                .or_default();
            node = Some(name);
        } else if *line == ".TP" {
            let (Some(n), Some(next)) = (&node, lines.get(i + 1)) else {
                continue;
            };
            if let Some(prop) = next
                .strip_prefix("\\fB")
                .and_then(|t| plain(t).split_once('=').map(|(p, _)| p.to_string()))
            {
                out.entry(section.clone())
                    .or_default()
                    .entry(n.clone())
                    .or_default()
                    .push(prop);
            }
        }
    }
    out
}

fn check(page_name: &str, ctxs: &[Ctx]) {
    let page = read(page_name);
    let doc = documented(&page);
    let mut missing = Vec::new();
    for spec in NODES.iter().filter(|n| ctxs.contains(&n.ctx)) {
        let section = spec.ctx.man_section();
        match doc.get(section).and_then(|s| s.get(spec.name)) {
            None => missing.push(format!("node `{}` under .SH {section}", spec.name)),
            Some(props) => {
                for p in spec.props {
                    if !props.iter().any(|d| d == p.name) {
                        missing.push(format!(
                            "property `{}=` of `{}` under .SH {section}",
                            p.name, spec.name
                        ));
                    }
                }
                for d in props {
                    if spec.prop(d).is_none() {
                        missing.push(format!(
                            "stale: `{}` documents property `{d}=`, which it does not take",
                            spec.name
                        ));
                    }
                }
            }
        }
    }
    for ctx in ctxs {
        for name in doc
            .get(ctx.man_section())
            .map(|s| s.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if tfctl_schema::vocab::lookup(*ctx, &name).is_none() {
                missing.push(format!(
                    "stale: .SH {} documents `{name}`, which is not a node there",
                    ctx.man_section()
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{page_name} is out of step with the vocabulary:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn app_file_page_documents_every_node_and_property() {
    check(
        "tfctl.kdl.5",
        &[Ctx::App, Ctx::Container, Ctx::Health, Ctx::Hook],
    );
}

#[test]
fn config_page_documents_every_setting() {
    check("tfctl-config.5", &[Ctx::Config]);
}

/// The `.RS`/`.RE` blocks of a page's EXAMPLE(S) section, as plain text.
fn examples(page: &str) -> Vec<String> {
    let section = page.split(".SH EXAMPLE").nth(1).unwrap_or("");
    section
        .split(".RS\n")
        .skip(1)
        .filter_map(|b| b.split(".RE").next())
        .map(|b| plain(b).replace("\\\\", "\\"))
        .collect()
}

#[test]
fn the_pages_examples_load() {
    let none = |_: &str| None;
    let app_examples = examples(&read("tfctl.kdl.5"));
    assert!(app_examples.len() >= 2);
    for ex in app_examples {
        if let Err(d) = tfctl_schema::load_str("example.kdl", &ex, Path::new("/srv"), &none) {
            panic!("example does not load:\n{ex}\n{}", d.render_plain(100));
        }
    }
    let config_examples = examples(&read("tfctl-config.5"));
    assert_eq!(config_examples.len(), 1);
    tfctl_schema::load_config_str("config.kdl", &config_examples[0], &none).unwrap();
}

#[test]
fn a_missing_entry_is_noticed() {
    // The checker itself: a page without `image` and without `at=` of `mount` fails.
    let page = read("tfctl.kdl.5")
        .replace(".SS image", ".SS imagex")
        .replace("\\fBat=\\fR\\(dq/PATH\\(dq\nRequired", "x\nRequired");
    let doc = documented(&page);
    let container = &doc["CONTAINER NODES"];
    assert!(container.get("image").is_none() && container.contains_key("imagex"));
    assert!(!container["mount"].iter().any(|p| p == "at"));
}
