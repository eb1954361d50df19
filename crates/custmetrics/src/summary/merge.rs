//! Summaries of disjoint customer partitions merged into those of the whole table.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;

use rayon::prelude::*;

use super::activity::{ActivitySpill, SpilledActivity};
use super::summarise::{sort_ids, sort_small_values};
use super::{ActivityVisit, CustomerRow, Summaries};
use crate::{Error, Result};

/// Merges the summaries of disjoint customer partitions (each customer in one part, as
/// [`crate::io::Partition`] splits them) into the summaries of the whole table: exactly what
/// [`super::summarise`] gives on all rows at once, since every figure of a customer comes from that
/// customer's rows only. The observation end is the latest of the parts' (they are equal when
/// it was given). Parts must share the period and the `by` dimensions.
///
/// # Errors
/// As [`PartitionMerger::finish`] and [`PartitionMerger::push`].
pub fn merge_partitions(parts: Vec<Summaries>) -> Result<Summaries> {
    let mut merger = PartitionMerger::new(parts.len());
    for part in parts {
        merger.push(part)?;
    }
    merger.finish()
}

/// Merges partition summaries as they are computed ([`merge_partitions`] one part at a time),
/// so that a part is released as soon as it is added: the memory held is the merged rows plus
/// one part, never all parts and their merge.
#[derive(Debug)]
pub struct PartitionMerger {
    merged: Option<Summaries>,
    parts: usize,
    /// Parts added so far.
    pushed: usize,
    /// Where each part's customers start in the merged rows.
    starts: Vec<usize>,
    /// Every part's customers were in id order (as summaries are): the merged order is then
    /// a merge of the parts, not a sort.
    parts_sorted: bool,
    /// The parts' activity rows, written to disk instead of merged
    /// ([`PartitionMerger::spilling_activity`]).
    spill: Option<ActivitySpill>,
}

impl PartitionMerger {
    /// A merger expecting about `parts` parts (to size its buffers once).
    pub fn new(parts: usize) -> PartitionMerger {
        PartitionMerger {
            merged: None,
            parts: parts.max(1),
            pushed: 0,
            starts: Vec::new(),
            parts_sorted: true,
            spill: None,
        }
    }

    /// A merger that writes each part's activity rows to a temporary file instead of merging
    /// them ([`PartitionMerger::finish_spilled`] reads them back in the merged order, one
    /// customer at a time): a partitioned report's peak then holds no activity row.
    pub(crate) fn spilling_activity(parts: usize) -> PartitionMerger {
        PartitionMerger {
            spill: Some(ActivitySpill::default()),
            ..PartitionMerger::new(parts)
        }
    }

    /// Adds one part (its customers must be in no other part).
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] when the part has another period or other dimensions.
    pub fn push(&mut self, mut part: Summaries) -> Result<()> {
        if let Some(spill) = self.spill.as_mut() {
            spill.push(&part.activity)?;
            part.activity = Vec::new();
        }
        self.pushed += 1;
        self.parts_sorted &= in_id_order(&part.customers);
        self.starts
            .push(self.merged.as_ref().map_or(0, |m| m.customers.len()));
        let Some(merged) = self.merged.as_mut() else {
            if self.parts == 1 {
                // One part is already the whole: nothing to make room for.
                self.merged = Some(part);
                return Ok(());
            }
            // Parts are about equal in size (customers are split by a hash): room for all of
            // them, with a margin, is reserved once. Capacity never written is address space,
            // not memory; growing later would copy the merged rows.
            let room = |n: usize| {
                n.saturating_mul(self.parts - 1)
                    .saturating_add(n / 2 + 1024)
            };
            let mut first = part;
            first.customers.reserve_exact(room(first.customers.len()));
            first.activity.reserve_exact(room(first.activity.len()));
            first.gaps.reserve_exact(room(first.gaps.len()));
            self.merged = Some(first);
            return Ok(());
        };
        if part.period != merged.period || part.by != merged.by {
            return Err(Error::InvalidSetting {
                setting: "partitions".into(),
                message: format!(
                    "partitions summarised differently ({} by {:?} and {} by {:?})",
                    merged.period.name(),
                    merged.by,
                    part.period.name(),
                    part.by
                ),
            });
        }
        merged.as_of = merged.as_of.max(part.as_of);
        // Activity rows point into the customers: shift them past the rows already merged
        // (the final order is set in `finish`).
        let offset = merged.customers.len() as u32;
        merged
            .activity
            .extend(part.activity.into_iter().map(|mut a| {
                a.customer += offset;
                a
            }));
        merged.customers.extend(part.customers);
        merged.gaps.extend(part.gaps);
        Ok(())
    }

    /// The merged summaries: customers by id, activity by customer then period, gaps sorted,
    /// all in place.
    ///
    /// # Errors
    /// [`Error::InsufficientData`] when no part was added.
    pub fn finish(self) -> Result<Summaries> {
        let (mut merged, spilled) = self.finish_spilled()?;
        if let Some(spilled) = spilled {
            let mut activity = Vec::new();
            spilled.visit(merged.customers.len(), &mut |_, rows| {
                activity.extend_from_slice(rows)
            })?;
            merged.activity = activity;
        }
        Ok(merged)
    }

    /// As [`PartitionMerger::finish`], with the activity rows left on disk when they were
    /// spilled ([`PartitionMerger::spilling_activity`]): the merged summaries then have none,
    /// and the spill reads them in the merged order.
    pub(crate) fn finish_spilled(self) -> Result<(Summaries, Option<SpilledActivity>)> {
        let Some(mut merged) = self.merged else {
            return Err(Error::InsufficientData {
                what: "customer metrics".into(),
                message: "no transactions (after the date filter)".into(),
            });
        };
        let mut spill = self.spill;
        if self.pushed == 1 {
            // A single part is in order already (summaries are), and sorting its ids again
            // cost a store read in one partition a tenth of its time.
            merged.customers.shrink_to_fit();
            merged.activity.shrink_to_fit();
            merged.gaps.shrink_to_fit();
            let spilled = spill.map(|s| s.finish(vec![0; merged.customers.len()]));
            return Ok((merged, spilled));
        }
        // Spilled rows are read back in the merged order one part after another, which needs
        // each part's customers in their own order there: so when parts came in id order.
        // Otherwise (parts built by hand) the rows are merged here, as without a spill.
        if let Some(s) = spill.take_if(|_| !self.parts_sorted) {
            for (part, &start) in self.starts.iter().enumerate() {
                merged
                    .activity
                    .extend(s.read_part(part)?.into_iter().map(|mut a| {
                        a.customer += start as u32;
                        a
                    }));
            }
        }
        let order = match self.parts_sorted {
            true => merged_id_order(&merged.customers, &self.starts),
            false => {
                let ids: Vec<&str> = merged
                    .customers
                    .iter()
                    .map(|c| c.customer_id.as_str())
                    .collect();
                sort_ids(&ids)
            }
        };
        let mut new_index = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            if let Some(slot) = new_index.get_mut(old as usize) {
                *slot = new as u32;
            }
        }
        // The part each merged customer came from (a part's customers start at its `start`).
        let part_of = spill.as_ref().map(|_| {
            order
                .iter()
                .map(|&old| {
                    let after = self.starts.partition_point(|&s| s <= old as usize);
                    after.saturating_sub(1) as u32
                })
                .collect::<Vec<u32>>()
        });
        drop(order);
        permute_in_place(&mut merged.customers, &new_index);
        merged.activity.par_iter_mut().for_each(|a| {
            a.customer = new_index
                .get(a.customer as usize)
                .copied()
                .unwrap_or(a.customer);
        });
        // (customer, period) pairs are distinct, so an unstable sort gives the one order.
        merged
            .activity
            .par_sort_unstable_by_key(|a| (a.customer, a.period));
        sort_small_values(&mut merged.gaps);
        merged.customers.shrink_to_fit();
        merged.activity.shrink_to_fit();
        merged.gaps.shrink_to_fit();
        let spilled = spill.zip(part_of).map(|(s, part_of)| s.finish(part_of));
        Ok((merged, spilled))
    }
}

/// Whether the customers are in id order (byte order, as [`sort_ids`] sorts).
fn in_id_order(customers: &[CustomerRow]) -> bool {
    customers
        .windows(2)
        .all(|w| matches!(w, [a, b] if a.customer_id <= b.customer_id))
}

/// The order by id of `customers`, made of runs in id order starting at `starts`: the runs
/// merged, k ways. Sorting the 26M ids of a 100M-row report's partitions held a borrowed id
/// and a sort key per customer (~0.9 GB, at the peak of the merge); this holds the order.
fn merged_id_order(customers: &[CustomerRow], starts: &[usize]) -> Vec<u32> {
    let id = |i: usize| customers.get(i).map_or("", |c| c.customer_id.as_str());
    // Each run's next customer and end.
    let mut runs: Vec<(usize, usize)> = starts
        .iter()
        .zip(starts.iter().skip(1).chain([&customers.len()]))
        .map(|(&from, &to)| (from, to))
        .collect();
    let mut heads: BinaryHeap<Reverse<(&str, usize)>> = runs
        .iter()
        .enumerate()
        .filter(|(_, (from, to))| from < to)
        .map(|(run, &(from, _))| Reverse((id(from), run)))
        .collect();
    let mut order = Vec::with_capacity(customers.len());
    while let Some(mut head) = heads.peek_mut() {
        let Reverse((_, run)) = *head;
        let Some((next, end)) = runs.get_mut(run) else {
            PeekMut::pop(head);
            continue;
        };
        order.push(*next as u32);
        *next += 1;
        match *next < *end {
            true => *head = Reverse((id(*next), run)),
            false => {
                PeekMut::pop(head);
            }
        }
    }
    order
}

/// Moves `values[i]` to `values[new_index[i]]` for every `i` (a permutation), by following its
/// cycles with swaps: no second copy of the values, which are the 26M customer rows of a 100M-row
/// table when partitions are merged.
fn permute_in_place<T>(values: &mut [T], new_index: &[u32]) {
    let mut placed = vec![false; values.len()];
    for start in 0..values.len() {
        if placed.get(start).copied().unwrap_or(true) {
            continue;
        }
        // Invariant: position `start` holds the value that came from `from`.
        let mut from = start;
        while let Some(&to) = new_index.get(from) {
            let to = to as usize;
            if let Some(p) = placed.get_mut(from) {
                *p = true;
            }
            if to == start {
                break;
            }
            values.swap(start, to);
            // `to` now holds its final value; `start` holds the value from `to`.
            from = to;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_in_place_moves_each_value_to_its_index() {
        let mut values = vec!['a', 'b', 'c', 'd', 'e', 'f'];
        // Two cycles (0 -> 2 -> 4 -> 0, 1 -> 5 -> 1) and a fixed point (3).
        permute_in_place(&mut values, &[2, 5, 4, 3, 0, 1]);
        assert_eq!(values, ['e', 'f', 'a', 'd', 'c', 'b']);
    }

    use crate::summary::tests::summaries;

    fn ids_of(s: &Summaries) -> Vec<&str> {
        s.customers.iter().map(|c| c.customer_id.as_str()).collect()
    }

    #[test]
    fn runs_in_id_order_merge_into_the_sorted_order() {
        // Three runs (one empty, one of a single id); ids in byte order, so `B` < `a` and
        // `a` < `ab`.
        let ids = ["a", "c", "d", "B", "ab", "e", "z"];
        let customers = summaries(&ids).customers;
        let order = merged_id_order(&customers, &[0, 3, 3, 6]);
        let merged: Vec<&str> = order.iter().map(|&i| ids[i as usize]).collect();
        assert_eq!(merged, ["B", "a", "ab", "c", "d", "e", "z"]);
        assert_eq!(order, sort_ids(&ids));
        assert!(in_id_order(&customers[..3]) && !in_id_order(&customers[..4]));
    }

    /// Summaries of `ids` with activity rows `(customer, period)` (one order each).
    fn with_activity(ids: &[&str], rows: &[(u32, i32)]) -> Summaries {
        let mut s = summaries(ids);
        s.activity = rows
            .iter()
            .map(|&(customer, period)| crate::summary::ActivityRow {
                customer,
                period,
                revenue: f64::from(period) + 0.5,
                orders: 1,
            })
            .collect();
        s
    }

    #[test]
    fn spilled_activity_reads_back_as_the_merged_rows() {
        // Parts in id order (the spill is read in the merged order) and out of it (the rows
        // are merged instead): either way the rows are those of the merge in memory.
        let in_order = || {
            vec![
                with_activity(&["b", "d"], &[(0, 1), (1, 2), (1, 3)]),
                with_activity(&[], &[]),
                with_activity(&["a", "c", "e"], &[(0, 5), (1, 1), (2, 4), (2, 6)]),
            ]
        };
        let out_of_order = || {
            vec![
                with_activity(&["d", "b"], &[(0, 2), (0, 3), (1, 1)]),
                with_activity(&["a", "c"], &[(0, 5), (1, 1)]),
            ]
        };
        for (parts, spills) in [(in_order(), true), (out_of_order(), false)] {
            let held = merge_partitions(parts.clone()).unwrap();
            assert!(!held.activity.is_empty());
            let mut merger = PartitionMerger::spilling_activity(parts.len());
            for part in parts.clone() {
                merger.push(part).unwrap();
            }
            let (merged, spilled) = merger.finish_spilled().unwrap();
            assert_eq!(ids_of(&merged), ids_of(&held));
            assert_eq!(spilled.is_some(), spills);
            let rows = match &spilled {
                Some(spilled) => {
                    assert!(merged.activity.is_empty());
                    let mut rows = Vec::new();
                    spilled
                        .visit(merged.customers.len(), &mut |_, own| {
                            rows.extend_from_slice(own)
                        })
                        .unwrap();
                    rows
                }
                None => merged.activity,
            };
            assert_eq!(rows, held.activity);
            // `finish` reads the spill back into the summaries.
            let mut merger = PartitionMerger::spilling_activity(parts.len());
            for part in parts {
                merger.push(part).unwrap();
            }
            assert_eq!(merger.finish().unwrap().activity, held.activity);
        }
    }

    #[test]
    fn a_part_out_of_id_order_is_sorted_when_merged() {
        // Out of order in both parts, in one, and in neither.
        for (first, second) in [
            (["c", "a"], ["d", "b"]),
            (["c", "a"], ["b", "d"]),
            (["a", "c"], ["b", "d"]),
        ] {
            let merged = merge_partitions(vec![summaries(&first), summaries(&second)]).unwrap();
            assert_eq!(ids_of(&merged), ["a", "b", "c", "d"]);
        }
    }
}
