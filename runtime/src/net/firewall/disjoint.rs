//! Making a union of (address range x port range) rectangles disjoint: the kernel's
//! concatenated-range sets (pipapo) refuse an element whose start or end falls inside another,
//! while overlapping `allow`s are ordinary input.

/// An address range times a port range (inclusive bounds; unused dimensions are 0..=0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rect {
    pub addr: (u64, u64),
    pub port: (u64, u64),
}

fn merge(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 + 1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The same union of rectangles as disjoint rectangles: cut the address axis at every edge,
/// merge the port ranges over each slice, then rejoin neighbouring slices with equal ports.
pub fn disjoint(rs: Vec<Rect>) -> Vec<Rect> {
    let mut cuts: Vec<u64> = rs.iter().flat_map(|r| [r.addr.0, r.addr.1 + 1]).collect();
    cuts.sort();
    cuts.dedup();
    // (address slice, merged port ranges over it)
    type Slice = ((u64, u64), Vec<(u64, u64)>);
    let mut slices: Vec<Slice> = Vec::new();
    for w in cuts.windows(2) {
        let (lo, hi) = (w[0], w[1] - 1);
        let ports = merge(
            rs.iter()
                .filter(|r| r.addr.0 <= lo && hi <= r.addr.1)
                .map(|r| r.port)
                .collect(),
        );
        if ports.is_empty() {
            continue;
        }
        match slices.last_mut() {
            Some((addr, p)) if addr.1 + 1 == lo && *p == ports => addr.1 = hi,
            _ => slices.push(((lo, hi), ports)),
        }
    }
    slices
        .into_iter()
        .flat_map(|(addr, ports)| ports.into_iter().map(move |port| Rect { addr, port }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(rs: &[Rect], a: u64, p: u64) -> bool {
        rs.iter()
            .any(|r| r.addr.0 <= a && a <= r.addr.1 && r.port.0 <= p && p <= r.port.1)
    }

    #[test]
    fn disjoint_keeps_the_union_and_removes_overlaps() {
        let input = vec![
            Rect {
                addr: (0, u32::MAX as u64),
                port: (80, 80),
            },
            Rect {
                addr: (100, 100),
                port: (80, 80),
            },
            Rect {
                addr: (50, 150),
                port: (70, 90),
            },
            Rect {
                addr: (120, 200),
                port: (85, 100),
            },
        ];
        let out = disjoint(input.clone());
        for (i, a) in out.iter().enumerate() {
            for b in &out[i + 1..] {
                let overlap = a.addr.0 <= b.addr.1
                    && b.addr.0 <= a.addr.1
                    && a.port.0 <= b.port.1
                    && b.port.0 <= a.port.1;
                assert!(!overlap, "{a:?} overlaps {b:?}");
            }
        }
        for a in [0, 49, 50, 100, 119, 120, 150, 151, 200, 201, 5000] {
            for p in [69, 70, 80, 84, 85, 90, 91, 100, 101] {
                assert_eq!(
                    covered(&input, a, p),
                    covered(&out, a, p),
                    "addr {a} port {p}"
                );
            }
        }
    }
}
