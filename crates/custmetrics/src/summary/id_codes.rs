//! Customer ids to the store's dense codes, in the order the ids are first seen, held in shards
//! by hash so that a frame of millions of rows is coded on every core.
//!
//! One map coded 10M rows on one core (~1.5 s of a 10M-row `summarize`). Here each row's id is
//! hashed to one of [`SHARDS`] maps; the shards code their rows (in row order) in parallel,
//! giving an id first met a provisional number; the new ids are then ranked by the row where
//! each was first seen, which gives exactly the codes one map coding the rows in order gives.

use polars::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

use super::CustomerId;

const SHARD_BITS: u32 = 6;
/// Number of maps: enough to spread the rows over every core evenly, few enough that each map
/// holds many ids.
const SHARDS: usize = 1 << SHARD_BITS;
/// Frames with fewer rows are coded one row after another (the shards' set-up costs more).
const PARALLEL_ROWS: usize = 1 << 16;

fn shard_of(id: &str) -> usize {
    (xxh3_64(id.as_bytes()) >> (64 - SHARD_BITS)) as usize
}

/// The codes of the ids met so far.
#[derive(Debug)]
pub(super) struct IdCodes {
    shards: Vec<PlHashMap<CustomerId, i32>>,
}

impl Default for IdCodes {
    fn default() -> Self {
        IdCodes {
            shards: (0..SHARDS).map(|_| PlHashMap::default()).collect(),
        }
    }
}

impl IdCodes {
    pub(super) fn get(&self, id: &str) -> Option<i32> {
        self.shards.get(shard_of(id))?.get(id).copied()
    }

    pub(super) fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    pub(super) fn insert(&mut self, id: CustomerId, code: i32) {
        if let Some(shard) = self.shards.get_mut(shard_of(&id)) {
            shard.insert(id, code);
        }
    }

    /// Inserts each `(code, id)`, the shards filled in parallel, each reserving room for its
    /// ids first.
    pub(super) fn insert_all(&mut self, codes: &[(usize, &str)]) {
        use rayon::prelude::*;
        let mut shard_of_each = Vec::new();
        codes
            .par_iter()
            .map(|(_, id)| shard_of(id))
            .collect_into_vec(&mut shard_of_each);
        self.shards.par_iter_mut().enumerate().for_each(|(s, map)| {
            let mine = || {
                codes
                    .iter()
                    .zip(&shard_of_each)
                    .filter(move |(_, shard)| **shard == s)
                    .map(|(pair, _)| pair)
            };
            map.reserve(mine().count());
            for &(code, id) in mine() {
                map.insert(CustomerId::from(id), code as i32);
            }
        });
    }

    /// The code of each row's id (none for a null id). Ids not met before get the codes
    /// `next, next + 1, ...` in the order of the row where each is first seen; they are
    /// returned in that order.
    pub(super) fn code_all(
        &mut self,
        ids: &StringChunked,
        next: usize,
    ) -> (Vec<Option<i32>>, Vec<CustomerId>) {
        if ids.len() < PARALLEL_ROWS {
            self.code_in_order(ids, next)
        } else {
            self.code_in_shards(ids, next)
        }
    }

    /// [`IdCodes::code_all`] one row after another.
    fn code_in_order(
        &mut self,
        ids: &StringChunked,
        next: usize,
    ) -> (Vec<Option<i32>>, Vec<CustomerId>) {
        let mut new_ids = Vec::new();
        let codes = ids
            .iter()
            .map(|id| {
                let id = id?;
                let shard = self.shards.get_mut(shard_of(id))?;
                Some(match shard.get(id) {
                    Some(&c) => c,
                    None => {
                        let c = (next + new_ids.len()) as i32;
                        let id = CustomerId::from(id);
                        new_ids.push(id.clone());
                        shard.insert(id, c);
                        c
                    }
                })
            })
            .collect();
        (codes, new_ids)
    }

    /// [`IdCodes::code_all`] by shard, in parallel.
    ///
    /// Rows are taken in slices (never across chunks): each slice hashes its ids to shards and
    /// writes its rows into each shard's list at the slice's place (the slices before it count
    /// the rows ahead), the shards code their rows, and each slice then reads its rows' codes
    /// back from its places in the shards' results. Scattering the rows to the shards and
    /// gathering the codes one row after another were ~0.3 s of a 10M-row summarize on one core.
    fn code_in_shards(
        &mut self,
        ids: &StringChunked,
        next: usize,
    ) -> (Vec<Option<i32>>, Vec<CustomerId>) {
        use rayon::prelude::*;
        /// Rows per slice.
        const SLICE: usize = 1 << 16;
        /// The shard of a null id: none.
        const NO_SHARD: u8 = SHARDS as u8;
        struct Slice<'a> {
            chunk: &'a polars_arrow::array::Utf8ViewArray,
            /// The slice's first row in its chunk and in the frame.
            from: usize,
            first_row: usize,
            len: usize,
        }
        let chunks: Vec<&polars_arrow::array::Utf8ViewArray> = ids.downcast_iter().collect();
        let mut slices = Vec::new();
        let mut offset = 0usize;
        for &chunk in &chunks {
            for from in (0..chunk.len()).step_by(SLICE) {
                slices.push(Slice {
                    chunk,
                    from,
                    first_row: offset + from,
                    len: SLICE.min(chunk.len() - from),
                });
            }
            offset += chunk.len();
        }
        // Each row's shard, and each slice's count of rows per shard.
        let hashed: Vec<(Vec<u8>, [usize; SHARDS])> = slices
            .par_iter()
            .map(|slice| {
                let mut counts = [0usize; SHARDS];
                let shards = (slice.from..slice.from + slice.len)
                    .map(|i| match slice.chunk.get(i) {
                        Some(id) => {
                            let s = shard_of(id);
                            if let Some(n) = counts.get_mut(s) {
                                *n += 1;
                            }
                            s as u8
                        }
                        None => NO_SHARD,
                    })
                    .collect();
                (shards, counts)
            })
            .collect();
        // Where each slice's rows start in each shard's list.
        let mut starts: Vec<[usize; SHARDS]> = Vec::with_capacity(hashed.len());
        let mut totals = [0usize; SHARDS];
        for (_, counts) in &hashed {
            starts.push(totals);
            for (total, n) in totals.iter_mut().zip(counts) {
                *total += n;
            }
        }
        // The rows of each shard, in row order.
        let mut rows: Vec<Vec<u32>> = totals
            .par_iter()
            .map(|&n| crate::io::load::par_filled(0, n))
            .collect();
        let mut places: Vec<Vec<&mut [u32]>> =
            slices.iter().map(|_| Vec::with_capacity(SHARDS)).collect();
        for (s, list) in rows.iter_mut().enumerate() {
            let mut rest = list.as_mut_slice();
            for ((_, counts), places) in hashed.iter().zip(places.iter_mut()) {
                let n = counts.get(s).copied().unwrap_or_default();
                let (place, tail) = rest.split_at_mut(n.min(rest.len()));
                places.push(place);
                rest = tail;
            }
        }
        slices.par_iter().zip(&hashed).zip(places).for_each(
            |((slice, (shards, _)), mut places)| {
                let mut filled = [0usize; SHARDS];
                for (i, &s) in shards.iter().enumerate() {
                    let s = usize::from(s);
                    if let (Some(place), Some(f)) = (places.get_mut(s), filled.get_mut(s))
                        && let Some(cell) = place.get_mut(*f)
                    {
                        *cell = (slice.first_row + i) as u32;
                        *f += 1;
                    }
                }
            },
        );
        // Where each chunk ends, to find a row's chunk walking the rows in order.
        let ends: Vec<usize> = chunks
            .iter()
            .scan(0usize, |end, c| {
                *end += c.len();
                Some(*end)
            })
            .collect();
        // Each shard codes its rows: a known id its code, a new one `-(j + 1)`, where `j`
        // counts the shard's new ids (`firsts` holds the row where each was first seen).
        #[derive(Default)]
        struct Coded {
            values: Vec<i32>,
            firsts: Vec<u32>,
            new_ids: Vec<CustomerId>,
        }
        let mut coded: Vec<Coded> = self
            .shards
            .par_iter_mut()
            .zip(&rows)
            .map(|(map, rows)| {
                let mut coded = Coded {
                    values: Vec::with_capacity(rows.len()),
                    ..Coded::default()
                };
                let (mut c, mut start) = (0usize, 0usize);
                for &row in rows {
                    let row = row as usize;
                    while let Some(&end) = ends.get(c).filter(|&&end| row >= end) {
                        start = end;
                        c += 1;
                    }
                    // Every listed row has an id.
                    let id = chunks
                        .get(c)
                        .and_then(|chunk| chunk.get(row - start))
                        .unwrap_or_default();
                    coded.values.push(match map.get(id) {
                        Some(&v) => v,
                        None => {
                            let v = -(coded.new_ids.len() as i32) - 1;
                            let id = CustomerId::from(id);
                            coded.new_ids.push(id.clone());
                            coded.firsts.push(row as u32);
                            map.insert(id, v);
                            v
                        }
                    });
                }
                coded
            })
            .collect();
        drop(rows);
        // The new ids ranked by their first row give their codes. (Shard and index as `u32`:
        // 12 bytes a new id, where `usize`s made it 24, 63 MB at 2.6M customers.)
        let mut order: Vec<(u32, u32, u32)> = coded
            .iter()
            .enumerate()
            .flat_map(|(s, c)| {
                c.firsts
                    .iter()
                    .enumerate()
                    .map(move |(j, &row)| (row, s as u32, j as u32))
            })
            .collect();
        order.par_sort_unstable_by_key(|&(row, _, _)| row);
        let mut finals: Vec<Vec<i32>> = coded.iter().map(|c| vec![0; c.firsts.len()]).collect();
        for (rank, &(_, s, j)) in order.iter().enumerate() {
            if let Some(code) = finals
                .get_mut(s as usize)
                .and_then(|f| f.get_mut(j as usize))
            {
                *code = (next + rank) as i32;
            }
        }
        drop(order);
        // Each shard's new ids moved to their places in code order (a gather of clones held
        // every new id twice until the shards' lists were dropped).
        let mut new_ids = vec![CustomerId::default(); finals.iter().map(Vec::len).sum()];
        for (c, finals) in coded.iter_mut().zip(&finals) {
            for (id, &code) in std::mem::take(&mut c.new_ids).into_iter().zip(finals) {
                if let Some(slot) = (code as usize)
                    .checked_sub(next)
                    .and_then(|i| new_ids.get_mut(i))
                {
                    *slot = id;
                }
            }
        }
        let finals = &finals;
        let resolve = |s: usize, v: i32| -> Option<i32> {
            if v < 0 {
                finals.get(s)?.get((-(v + 1)) as usize).copied()
            } else {
                Some(v)
            }
        };
        self.shards.par_iter_mut().enumerate().for_each(|(s, map)| {
            for v in map.values_mut() {
                *v = resolve(s, *v).unwrap_or(*v);
            }
        });
        // Each slice reads its rows' codes from its places in the shards' values.
        let mut codes = crate::io::load::par_filled(None, ids.len());
        let mut parts: Vec<&mut [Option<i32>]> = Vec::with_capacity(slices.len());
        let mut rest = codes.as_mut_slice();
        for slice in &slices {
            let (part, tail) = rest.split_at_mut(slice.len.min(rest.len()));
            parts.push(part);
            rest = tail;
        }
        parts.into_par_iter().zip(&hashed).zip(&starts).for_each(
            |((part, (shards, _)), starts)| {
                let mut cursor = *starts;
                for (slot, &s) in part.iter_mut().zip(shards) {
                    let s = usize::from(s);
                    let Some(at) = cursor.get_mut(s) else {
                        continue;
                    };
                    *slot = coded
                        .get(s)
                        .and_then(|c| c.values.get(*at))
                        .and_then(|&v| resolve(s, v));
                    *at += 1;
                }
            },
        );
        (codes, new_ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chunked(parts: &[Vec<Option<String>>]) -> StringChunked {
        let mut out: Option<StringChunked> = None;
        for p in parts {
            let ca = StringChunked::from_iter(p.iter().map(Option::as_deref));
            match &mut out {
                Some(o) => {
                    o.append(&ca).unwrap();
                }
                None => out = Some(ca),
            }
        }
        out.unwrap_or_default()
    }

    /// Known ids first (codes 0..known), then frames coded in turn both ways.
    fn both_ways(known: usize, frames: &[StringChunked]) {
        let mut a = IdCodes::default();
        let mut b = IdCodes::default();
        for k in 0..known {
            a.insert(format!("k{k}").into(), k as i32);
            b.insert(format!("k{k}").into(), k as i32);
        }
        let mut next = known;
        for f in frames {
            let (ca, na) = a.code_in_order(f, next);
            let (cb, nb) = b.code_in_shards(f, next);
            assert_eq!(ca, cb);
            assert_eq!(na, nb);
            next += na.len();
        }
        for s in 0..SHARDS {
            assert_eq!(a.shards[s], b.shards[s]);
        }
    }

    #[test]
    fn codes_inserted_together_are_those_inserted_one_by_one() {
        let ids: Vec<String> = (0..5_000).map(|i| format!("C{}", i * 37)).collect();
        let codes: Vec<(usize, &str)> = ids
            .iter()
            .enumerate()
            .map(|(c, id)| (c + 10, id.as_str()))
            .collect();
        let mut together = IdCodes::default();
        together.insert(CustomerId::from("known"), 3);
        together.insert_all(&codes);
        let mut one_by_one = IdCodes::default();
        one_by_one.insert(CustomerId::from("known"), 3);
        for &(code, id) in &codes {
            one_by_one.insert(CustomerId::from(id), code as i32);
        }
        for s in 0..SHARDS {
            assert_eq!(together.shards[s], one_by_one.shards[s]);
        }
        assert_eq!(together.get("C37"), Some(11));
        assert_eq!(together.get("known"), Some(3));
        assert_eq!(together.get("C38"), None);
    }

    #[test]
    fn shards_code_as_one_map_in_row_order() {
        // Repeats across chunks, nulls, known ids, ids longer than the inline 23 bytes.
        let rows: Vec<Option<String>> = (0..200_000)
            .map(|i| match i % 7 {
                0 => None,
                1 => Some(format!("k{}", i % 50)),
                2 => Some(format!(
                    "a-customer-id-longer-than-the-inline-size-{}",
                    i % 997
                )),
                _ => Some(format!("c{}", (i * 7919) % 40_000)),
            })
            .collect();
        let parts: Vec<Vec<Option<String>>> = rows.chunks(30_001).map(<[_]>::to_vec).collect();
        let frame = chunked(&parts);
        assert!(frame.chunks().len() > 1);
        both_ways(
            50,
            &[frame.clone(), frame.slice(1000, 5000), chunked(&[vec![]])],
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn shards_agree_with_one_map(
            ids in proptest::collection::vec(proptest::option::weighted(0.95, 0u32..300), 0..2000),
            cut in 0usize..2000,
            known in 0usize..20,
        ) {
            let ids: Vec<Option<String>> = ids.into_iter().map(|v| v.map(|v| if v < 20 { format!("k{v}") } else { format!("id{v}") })).collect();
            let cut = cut.min(ids.len());
            let first = chunked(&[ids[..cut].to_vec(), ids[cut..].to_vec()]);
            let second = chunked(&[ids[cut..].to_vec()]);
            both_ways(known, &[first, second]);
        }
    }
}
