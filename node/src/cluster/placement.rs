//! Where a segment's copies go. Pure and deterministic: the same inputs always give the
//! same targets, so the choice can be tested exhaustively and explained to an operator.
//!
//! Rules, in order: never a node that is down, retired, excluded or under its own
//! free-space floor; prefer a campus that holds no copy yet; then the node with the most free space
//! (as a fraction of its disk); then the lowest id.

use std::collections::BTreeSet;

use crate::meta::NodeId;

/// A node as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: NodeId,
    pub campus: String,
    pub alive: bool,
    pub disk_free: u64,
    pub disk_total: u64,
    /// The node's free-space floor: with less free space it takes no new copies.
    pub disk_floor: u64,
}

/// Chooses up to `need` targets for a segment whose copies are already on `holders`.
/// `exclude` lists nodes that must not be chosen (for instance one that just failed).
pub fn choose(candidates: &[Candidate], holders: &[NodeId], need: usize, exclude: &BTreeSet<NodeId>) -> Vec<NodeId> {
    let mut campuses: BTreeSet<&str> =
        candidates.iter().filter(|c| holders.contains(&c.id)).map(|c| c.campus.as_str()).collect();
    let mut pool: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.alive && c.disk_free >= c.disk_floor && !holders.contains(&c.id) && !exclude.contains(&c.id))
        .collect();
    let mut out = Vec::new();
    while out.len() < need && !pool.is_empty() {
        let best = (0..pool.len())
            .min_by(|&a, &b| {
                let key = |c: &Candidate| {
                    // Fraction of the disk in use, in parts per million (integer: deterministic).
                    let used = if c.disk_total == 0 {
                        1_000_000
                    } else {
                        1_000_000 - (u128::from(c.disk_free) * 1_000_000 / u128::from(c.disk_total)) as u64
                    };
                    (campuses.contains(c.campus.as_str()), used, c.id)
                };
                key(pool[a]).cmp(&key(pool[b]))
            })
            .expect("pool is not empty");
        let c = pool.swap_remove(best);
        campuses.insert(c.campus.as_str());
        out.push(c.id);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: NodeId, campus: &str, free: u64) -> Candidate {
        Candidate { id, campus: campus.into(), alive: true, disk_free: free, disk_total: 1000, disk_floor: 0 }
    }

    #[test]
    fn other_campus_first_then_least_full_then_lowest_id() {
        let nodes = [c(1, "east", 900), c(2, "east", 950), c(3, "west", 100), c(4, "west", 500)];
        // Recorder 1 in east: the west node with more room wins over the emptier east node.
        assert_eq!(choose(&nodes, &[1], 1, &BTreeSet::new()), vec![4]);
        // Two more copies: west first, then the emptiest east node.
        assert_eq!(choose(&nodes, &[1], 2, &BTreeSet::new()), vec![4, 2]);
        // Ties broken by id.
        let tie = [c(1, "a", 500), c(3, "b", 500), c(2, "b", 500)];
        assert_eq!(choose(&tie, &[1], 1, &BTreeSet::new()), vec![2]);
    }

    #[test]
    fn never_down_excluded_holding_or_under_the_floor() {
        let mut nodes = vec![c(1, "a", 900), c(2, "b", 900), c(3, "c", 50), c(4, "d", 900)];
        nodes[1].alive = false;
        nodes[2].disk_floor = 100;
        let ex = BTreeSet::from([4]);
        assert_eq!(choose(&nodes, &[1], 2, &ex), Vec::<NodeId>::new());
        nodes[2].disk_floor = 10;
        assert_eq!(choose(&nodes, &[1], 2, &ex), vec![3]);
        assert_eq!(choose(&nodes, &[1, 3], 1, &BTreeSet::new()), vec![4]);
    }

    #[test]
    fn deterministic_and_never_repeats() {
        let nodes: Vec<_> = (1..=9).map(|i| c(i, ["a", "b", "c"][i as usize % 3], 100 * i)).collect();
        let a = choose(&nodes, &[5], 4, &BTreeSet::new());
        assert_eq!(a, choose(&nodes, &[5], 4, &BTreeSet::new()));
        let set: BTreeSet<_> = a.iter().collect();
        assert_eq!(set.len(), 4);
        assert!(!a.contains(&5));
        // Three campuses: the first two picks cover the two campuses 5 is not in.
        let camp = |id: NodeId| nodes.iter().find(|n| n.id == id).unwrap().campus.clone();
        assert_ne!(camp(a[0]), camp(5));
        assert_ne!(camp(a[1]), camp(5));
        assert_ne!(camp(a[0]), camp(a[1]));
    }
}
