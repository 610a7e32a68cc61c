//! Merging Compose files in order (`docker compose -f a.yaml -f b.yaml`), and a service with the
//! one it `extends`, by the Compose Specification's merge rules: mappings merge key by key,
//! commands and health-check tests are replaced, list-or-mapping keys (`environment`, `labels`,
//! ...) merge as mappings, resources that are unique by their target (`volumes`, `secrets`,
//! `ports`, ...) replace the earlier entry for the same target, other sequences append, and
//! scalars are replaced. `!reset` removes a value and `!override` replaces it whole.

use serde_yaml_ng::value::{Tag, TaggedValue};
use serde_yaml_ng::{Mapping, Value};

/// Top-level sections whose entries are merged one by one.
const SECTIONS: &[&str] = &["services", "networks", "volumes", "secrets", "configs"];

/// Service keys whose value is replaced, never merged.
const REPLACED: &[&str] = &["command", "entrypoint"];

/// Service keys written as a list of `KEY=VALUE` or a mapping; merged as mappings.
const KEY_VALUE: &[&str] = &["environment", "labels", "sysctls", "annotations", "extra_hosts"];

pub fn is_tag(v: &Value, name: &str) -> bool {
    matches!(v, Value::Tagged(t) if t.tag == Tag::new(name))
}

/// `!override VALUE` as VALUE; other values as they are.
fn untag(v: Value) -> Value {
    match v {
        Value::Tagged(t) if t.tag == Tag::new("override") => t.value,
        v => v,
    }
}

/// Removes `!reset`/`!override` tags left in a value that had nothing to merge with.
pub fn strip_tags(v: Value) -> Option<Value> {
    match v {
        v if is_tag(&v, "reset") => None,
        Value::Tagged(t) if t.tag == Tag::new("override") => strip_tags(t.value),
        Value::Tagged(t) => {
            let TaggedValue { tag, value } = *t;
            strip_tags(value).map(|value| Value::Tagged(Box::new(TaggedValue { tag, value })))
        }
        Value::Mapping(m) => Some(Value::Mapping(
            m.into_iter().filter_map(|(k, v)| strip_tags(v).map(|v| (k, v))).collect(),
        )),
        Value::Sequence(s) => Some(Value::Sequence(s.into_iter().filter_map(strip_tags).collect())),
        v => Some(v),
    }
}

/// Merges a whole file over the files before it.
pub fn merge_files(mut base: Mapping, over: Mapping) -> Mapping {
    for (k, v) in over {
        let section = k.as_str().filter(|s| SECTIONS.contains(s)).map(str::to_string);
        if is_tag(&v, "reset") {
            base.remove(&k);
            continue;
        }
        match (section, base.remove(&k)) {
            (Some(name), Some(Value::Mapping(old))) if !is_tag(&v, "override") => {
                let mut merged = old;
                if let Value::Mapping(new) = v {
                    for (ek, ev) in new {
                        let entry = match merged.remove(&ek) {
                            Some(_) if is_tag(&ev, "reset") => continue,
                            Some(prev) if name == "services" => merge_service(prev, ev),
                            Some(prev) => merge_value(prev, ev),
                            None => ev,
                        };
                        merged.insert(ek, entry);
                    }
                }
                base.insert(k, Value::Mapping(merged));
            }
            _ => {
                base.insert(k, untag(v));
            }
        }
    }
    base
}

/// Merges one service's definition over another's.
pub fn merge_service(base: Value, over: Value) -> Value {
    let (mut base, over) = match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => (b, o),
        (_, over) => return over,
    };
    for (k, v) in over {
        let key = k.as_str().unwrap_or_default().to_string();
        if is_tag(&v, "reset") {
            base.remove(&k);
            continue;
        }
        if is_tag(&v, "override") {
            base.insert(k, untag(v));
            continue;
        }
        let merged = match base.remove(&k) {
            None => v,
            Some(old) => match key.as_str() {
                k if REPLACED.contains(&k) => v,
                k if KEY_VALUE.contains(&k) => {
                    merge_value(Value::Mapping(key_values(old)), Value::Mapping(key_values(v)))
                }
                "depends_on" | "networks" => {
                    merge_value(Value::Mapping(list_to_map(old)), Value::Mapping(list_to_map(v)))
                }
                "healthcheck" => merge_healthcheck(old, v),
                "volumes" | "secrets" | "configs" | "ports" | "expose" | "devices" | "tmpfs"
                | "dns" | "dns_search" | "env_file" | "cap_add" | "cap_drop" | "profiles" => {
                    merge_unique(old, v, &key)
                }
                _ => merge_value(old, v),
            },
        };
        base.insert(k, merged);
    }
    Value::Mapping(base)
}

fn merge_healthcheck(old: Value, new: Value) -> Value {
    let (mut old, new) = match (old, new) {
        (Value::Mapping(o), Value::Mapping(n)) => (o, n),
        (_, new) => return new,
    };
    for (k, v) in new {
        if is_tag(&v, "reset") {
            old.remove(&k);
            continue;
        }
        // The test is a command: replaced whole.
        let v = if k.as_str() == Some("test") { untag(v) } else { v };
        let merged = match old.remove(&k) {
            Some(prev) if k.as_str() != Some("test") => merge_value(prev, v),
            _ => v,
        };
        old.insert(k, merged);
    }
    Value::Mapping(old)
}

/// The generic rule: mappings key by key, sequences appended, scalars replaced.
pub fn merge_value(old: Value, new: Value) -> Value {
    match (old, new) {
        (_, new) if is_tag(&new, "override") => untag(new),
        (Value::Mapping(mut a), Value::Mapping(b)) => {
            for (k, v) in b {
                if is_tag(&v, "reset") {
                    a.remove(&k);
                    continue;
                }
                let merged = match a.remove(&k) {
                    Some(prev) => merge_value(prev, v),
                    None => v,
                };
                a.insert(k, merged);
            }
            Value::Mapping(a)
        }
        (Value::Sequence(mut a), Value::Sequence(b)) => {
            a.extend(b);
            Value::Sequence(a)
        }
        (_, new) => new,
    }
}

/// Sequences of resources unique by a key: a later entry replaces an earlier one with the same
/// key, in the earlier one's place; new entries append.
fn merge_unique(old: Value, new: Value, key: &str) -> Value {
    let as_seq = |v: Value| match v {
        Value::Sequence(s) => s,
        Value::Null => Vec::new(),
        other => vec![other],
    };
    let mut out = as_seq(old);
    for item in as_seq(new) {
        let id = unique_key(&item, key);
        match out.iter().position(|o| unique_key(o, key) == id) {
            Some(i) => out[i] = item,
            None => out.push(item),
        }
    }
    Value::Sequence(out)
}

/// What makes an entry unique: a mount's target, a secret's or config's target (or source), a
/// device's container path; for the others the whole entry.
fn unique_key(item: &Value, key: &str) -> String {
    let field = |f: &str| item.get(f).and_then(scalar_text);
    match key {
        "volumes" => match item {
            Value::String(s) => {
                let parts = split_volume(s);
                parts.get(1).or(parts.first()).cloned().unwrap_or_default()
            }
            _ => field("target").unwrap_or_default(),
        },
        "secrets" | "configs" => match item {
            Value::String(s) => s.clone(),
            _ => field("target").or_else(|| field("source")).unwrap_or_default(),
        },
        "devices" => match item {
            Value::String(s) => s.split(':').nth(1).unwrap_or(s).to_string(),
            _ => field("target").unwrap_or_default(),
        },
        _ => scalar_text(item).unwrap_or_else(|| format!("{item:?}")),
    }
}

/// Splits a short-syntax volume `SRC:DST[:MODE]` on its colons.
pub fn split_volume(s: &str) -> Vec<String> {
    s.split(':').map(str::to_string).collect()
}

/// Numbers, booleans and strings as the text Compose would use.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `environment`-style values: a list of `KEY=VALUE` (or bare `KEY`, value null) or a mapping.
pub fn key_values(v: Value) -> Mapping {
    match v {
        Value::Mapping(m) => m,
        Value::Sequence(items) => items
            .into_iter()
            .filter_map(|item| {
                let text = scalar_text(&item)?;
                Some(match text.split_once('=') {
                    Some((k, v)) => (Value::String(k.to_string()), Value::String(v.to_string())),
                    None => (Value::String(text), Value::Null),
                })
            })
            .collect(),
        _ => Mapping::new(),
    }
}

/// `depends_on` and `networks`: a list of names, or a mapping of names to settings.
pub fn list_to_map(v: Value) -> Mapping {
    match v {
        Value::Mapping(m) => m,
        Value::Sequence(items) => items.into_iter().map(|i| (i, Value::Null)).collect(),
        _ => Mapping::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Mapping {
        match v {
            Value::Mapping(m) => m,
            _ => panic!("not a mapping"),
        }
    }

    fn y(s: &str) -> Value {
        serde_yaml_ng::from_str(s).unwrap()
    }

    #[test]
    fn override_file_merges_by_the_spec_rules() {
        let base = y(r#"
services:
  web:
    image: nginx
    command: ["a", "b"]
    environment: [A=1, B=2]
    ports: ["80:80"]
    volumes: ["./a:/data", "logs:/logs"]
    cap_add: [NET_ADMIN]
    healthcheck: {test: ["CMD", "x"], interval: 5s}
"#);
        let over = y(r#"
services:
  web:
    image: nginx:1.27
    command: ["c"]
    environment: {B: "3", C: "4"}
    ports: ["443:443"]
    volumes: ["./b:/data"]
    cap_add: [SYS_TIME]
    healthcheck: {test: ["CMD", "y"]}
  db:
    image: postgres
"#);
        let m = Value::Mapping(merge_files(map(base), map(over)));
        let web = &m["services"]["web"];
        assert_eq!(web["image"], y("nginx:1.27"));
        assert_eq!(web["command"], y("[c]"));
        assert_eq!(web["environment"], y("{A: '1', B: '3', C: '4'}"));
        assert_eq!(web["ports"], y("['80:80', '443:443']"));
        assert_eq!(web["volumes"], y("['./b:/data', 'logs:/logs']"));
        assert_eq!(web["cap_add"], y("[NET_ADMIN, SYS_TIME]"));
        assert_eq!(web["healthcheck"], y("{test: [CMD, y], interval: 5s}"));
        assert_eq!(m["services"]["db"]["image"], y("postgres"));
    }

    #[test]
    fn reset_and_override_tags() {
        let base = y("services: {web: {image: a, ports: ['80:80'], environment: {A: '1', B: '2'}}}");
        let over = y("services: {web: {ports: !reset [], environment: !override {C: '3'}}}");
        let m = Value::Mapping(merge_files(map(base), map(over)));
        let web = &m["services"]["web"];
        assert!(web.get("ports").is_none());
        assert_eq!(web["environment"], y("{C: '3'}"));
    }
}
