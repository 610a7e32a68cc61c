//! Start order: containers grouped into levels by their `after` edges, so each level starts in
//! parallel once the one before it is ready, and `down` walks the levels backwards.

use std::collections::HashMap;

/// Levels of container names: every container's `after` targets stand in an earlier level.
/// `deps` gives, per container (in file order), the names it waits for. Names not in `deps` are
/// ignored (validation reports them); a cycle (also rejected by validation) leaves its members
/// in a final level rather than looping.
pub fn levels(deps: &[(String, Vec<String>)]) -> Vec<Vec<String>> {
    let index: HashMap<&str, usize> = deps.iter().enumerate().map(|(i, (n, _))| (n.as_str(), i)).collect();
    let mut level: Vec<Option<usize>> = vec![None; deps.len()];
    let mut changed = true;
    while changed {
        changed = false;
        for (i, (_, after)) in deps.iter().enumerate() {
            if level[i].is_some() {
                continue;
            }
            let mut at = 0;
            let mut ready = true;
            for dep in after.iter().filter_map(|d| index.get(d.as_str())) {
                match level[*dep] {
                    Some(l) => at = at.max(l + 1),
                    None => ready = false,
                }
            }
            if ready {
                level[i] = Some(at);
                changed = true;
            }
        }
    }
    let depth = level.iter().flatten().max().map_or(0, |m| m + 1);
    let mut out = vec![Vec::new(); depth];
    let mut stuck = Vec::new();
    for (i, (name, _)) in deps.iter().enumerate() {
        match level[i] {
            Some(l) => out[l].push(name.clone()),
            None => stuck.push(name.clone()),
        }
    }
    if !stuck.is_empty() {
        out.push(stuck);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(name: &str, after: &[&str]) -> (String, Vec<String>) {
        (name.to_string(), after.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn independent_containers_share_a_level_in_file_order() {
        let l = levels(&[d("web", &["api"]), d("db", &[]), d("cache", &[]), d("api", &["db", "cache"])]);
        assert_eq!(l, vec![vec!["db", "cache"], vec!["api"], vec!["web"]]);
    }

    #[test]
    fn a_cycle_never_loops() {
        let l = levels(&[d("a", &["b"]), d("b", &["a"]), d("c", &[])]);
        assert_eq!(l, vec![vec!["c".to_string()], vec!["a".to_string(), "b".to_string()]]);
    }
}
