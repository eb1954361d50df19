//! The customer × period activity rows, read customer by customer wherever they are: held in
//! the summaries, or spilled to temporary files by a merge of customer partitions.
//!
//! Why spill: at 100M transactions the activity rows are 80M × 20 B = 1.6 GB, the largest
//! thing a partitioned report would otherwise hold while it merges the partitions and matches
//! the customers table (its peak). Three sections read them (retention, the contracts' revenue
//! churn, the supporting figures' lifecycle), each in one pass in customer order, so the rows
//! can stay on disk: each partition's rows are written as the partition is summarised, in the
//! partition's customer order, and a pass reads every partition's file at once, in the order
//! the merge put their customers in (a merge of runs, so each file is read front to back).

use std::convert::Infallible;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use super::ActivityRow;
use crate::temp_files::Tracked;
use crate::{Error, Result};

/// Activity rows read one customer at a time, in customer order.
pub(crate) trait ActivityVisit {
    /// Reading the rows can fail (spilled rows) or not (held rows).
    type Error;

    /// Calls `f(customer, rows)` for each customer `0..customers` in order, with the
    /// customer's rows in period order (empty for a customer without rows).
    fn visit(
        &self,
        customers: usize,
        f: &mut dyn FnMut(usize, &[ActivityRow]),
    ) -> std::result::Result<(), Self::Error>;

    /// The earliest period of any row (`None`: no rows).
    fn min_period(&self) -> Option<i32>;
}

/// Rows held in memory, sorted by customer then period (as [`super::Summaries::activity`]).
impl ActivityVisit for [ActivityRow] {
    type Error = Infallible;

    fn visit(
        &self,
        customers: usize,
        f: &mut dyn FnMut(usize, &[ActivityRow]),
    ) -> std::result::Result<(), Infallible> {
        let mut rest = self;
        for customer in 0..customers {
            let run = rest
                .iter()
                .take_while(|a| a.customer as usize == customer)
                .count();
            let (own, after) = rest.split_at(run);
            rest = after;
            f(customer, own);
        }
        Ok(())
    }

    fn min_period(&self) -> Option<i32> {
        self.iter().map(|a| a.period).min()
    }
}

/// The activity rows of a report's stage 1, held or spilled.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ActivityRuns<'a> {
    Held(&'a [ActivityRow]),
    Spilled(&'a SpilledActivity),
}

impl ActivityVisit for ActivityRuns<'_> {
    type Error = Error;

    fn visit(&self, customers: usize, f: &mut dyn FnMut(usize, &[ActivityRow])) -> Result<()> {
        match self {
            ActivityRuns::Held(rows) => {
                let Ok(()) = rows.visit(customers, f);
                Ok(())
            }
            ActivityRuns::Spilled(spill) => spill.visit(customers, f),
        }
    }

    fn min_period(&self) -> Option<i32> {
        match self {
            ActivityRuns::Held(rows) => rows.min_period(),
            ActivityRuns::Spilled(spill) => spill.min_period(),
        }
    }
}

/// Bytes of one spilled row: customer (u32), period (i32), revenue (f64), orders (u32), little
/// endian.
const ROW_BYTES: usize = 20;

/// Activity rows of merged partitions, in one temporary file per partition (each in the
/// partition's own customer numbering and order), and which partition each merged customer
/// came from. The files are deleted when this is dropped (or by the interrupt handler).
#[derive(Debug)]
pub(crate) struct SpilledActivity {
    files: Vec<SpillFile>,
    /// The partition of each merged customer, in merged order. Within a partition, its
    /// customers come in their own order (the merge is a merge of runs), which is the order of
    /// their rows in its file.
    part_of: Vec<u32>,
    min_period: Option<i32>,
}

#[derive(Debug)]
struct SpillFile {
    file: tempfile::NamedTempFile,
    _tracked: Tracked,
}

impl SpillFile {
    fn path(&self) -> PathBuf {
        self.file.path().to_path_buf()
    }
}

/// A [`SpilledActivity`] being written, one partition at a time.
#[derive(Debug, Default)]
pub(crate) struct ActivitySpill {
    files: Vec<SpillFile>,
    min_period: Option<i32>,
}

impl ActivitySpill {
    /// Writes one partition's rows (its customers numbered from 0, sorted by customer then
    /// period) to a new temporary file.
    pub(crate) fn push(&mut self, rows: &[ActivityRow]) -> Result<()> {
        let (file, tracked) = crate::temp_files::named_temp_prefixed(".custmetrics-activity-")
            .map_err(|e| {
                let why = format!(
                    "cannot create a file for the activity rows of a report read in partitions \
                     (TMPDIR names where they go): {e}"
                );
                Error::io(std::env::temp_dir(), std::io::Error::new(e.kind(), why))
            })?;
        let path = file.path().to_path_buf();
        let mut out = BufWriter::with_capacity(1 << 20, file.as_file());
        let mut buf = [0u8; ROW_BYTES];
        for a in rows {
            let (customer, period, revenue, orders) = (a.customer, a.period, a.revenue, a.orders);
            buf[..4].copy_from_slice(&customer.to_le_bytes());
            buf[4..8].copy_from_slice(&period.to_le_bytes());
            buf[8..16].copy_from_slice(&revenue.to_le_bytes());
            buf[16..].copy_from_slice(&orders.to_le_bytes());
            out.write_all(&buf).map_err(|e| Error::io(&path, e))?;
        }
        out.flush().map_err(|e| Error::io(&path, e))?;
        drop(out);
        self.min_period = self
            .min_period
            .into_iter()
            .chain(rows.iter().map(|a| a.period).min())
            .min();
        self.files.push(SpillFile {
            file,
            _tracked: tracked,
        });
        Ok(())
    }

    /// The spilled rows, read in the merged order `part_of` (the partition of each merged
    /// customer, whose customers must come in their own order).
    pub(crate) fn finish(self, part_of: Vec<u32>) -> SpilledActivity {
        SpilledActivity {
            files: self.files,
            part_of,
            min_period: self.min_period,
        }
    }

    /// Reads partition `part`'s rows back, in its own numbering.
    pub(crate) fn read_part(&self, part: usize) -> Result<Vec<ActivityRow>> {
        let mut rows = Vec::new();
        if let Some(file) = self.files.get(part) {
            let mut reader = RowReader::open(file, 1 << 20)?;
            while let Some(row) = reader.next()? {
                rows.push(row);
            }
        }
        Ok(rows)
    }
}

impl ActivityVisit for SpilledActivity {
    type Error = Error;

    fn min_period(&self) -> Option<i32> {
        self.min_period
    }

    /// `customers` is the number of merged customers.
    fn visit(&self, customers: usize, f: &mut dyn FnMut(usize, &[ActivityRow])) -> Result<()> {
        // A few MB of buffers in all, however many partitions.
        let buffer = ((64 << 20) / self.files.len().max(1)).clamp(64 << 10, 4 << 20);
        let mut readers = self
            .files
            .iter()
            .map(|f| RowReader::open(f, buffer))
            .collect::<Result<Vec<_>>>()?;
        // Each partition's next customer, in its own numbering.
        let mut next_local = vec![0u32; readers.len()];
        let mut rows = Vec::new();
        for customer in 0..customers {
            rows.clear();
            let part = self
                .part_of
                .get(customer)
                .map_or(usize::MAX, |&p| p as usize);
            if let (Some(reader), Some(local)) = (readers.get_mut(part), next_local.get_mut(part)) {
                while let Some(row) = reader.next_of(*local)? {
                    rows.push(ActivityRow {
                        customer: customer as u32,
                        ..row
                    });
                }
                *local += 1;
            }
            f(customer, &rows);
        }
        Ok(())
    }
}

/// One spill file read row by row, with one row of look-ahead.
struct RowReader {
    reader: BufReader<File>,
    path: PathBuf,
    peeked: Option<ActivityRow>,
}

impl RowReader {
    fn open(file: &SpillFile, buffer: usize) -> Result<RowReader> {
        let path = file.path();
        let handle = file.file.reopen().map_err(|e| Error::io(&path, e))?;
        Ok(RowReader {
            reader: BufReader::with_capacity(buffer, handle),
            path,
            peeked: None,
        })
    }

    /// The next row (`None` at the end of the file).
    fn next(&mut self) -> Result<Option<ActivityRow>> {
        if let Some(row) = self.peeked.take() {
            return Ok(Some(row));
        }
        let mut buf = [0u8; ROW_BYTES];
        // A clean end falls between rows; a file cut inside one is an error.
        let mut filled = 0;
        while filled < ROW_BYTES {
            let Some(rest) = buf.get_mut(filled..) else {
                break;
            };
            match self.reader.read(rest) {
                Ok(0) if filled == 0 => return Ok(None),
                Ok(0) => {
                    return Err(Error::io(
                        &self.path,
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "spilled activity rows cut short",
                        ),
                    ));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
        let word = |at: usize| -> [u8; 4] {
            let mut w = [0u8; 4];
            if let Some(b) = buf.get(at..at + 4) {
                w.copy_from_slice(b);
            }
            w
        };
        let mut money = [0u8; 8];
        if let Some(b) = buf.get(8..16) {
            money.copy_from_slice(b);
        }
        Ok(Some(ActivityRow {
            customer: u32::from_le_bytes(word(0)),
            period: i32::from_le_bytes(word(4)),
            revenue: f64::from_le_bytes(money),
            orders: u32::from_le_bytes(word(16)),
        }))
    }

    /// The next row if it belongs to `customer` (left for later otherwise).
    fn next_of(&mut self, customer: u32) -> Result<Option<ActivityRow>> {
        match self.next()? {
            Some(row) if row.customer == customer => Ok(Some(row)),
            other => {
                self.peeked = other;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(customer: u32, period: i32, revenue: f64, orders: u32) -> ActivityRow {
        ActivityRow {
            customer,
            period,
            revenue,
            orders,
        }
    }

    fn collect(
        runs: &dyn ActivityVisit<Error = Error>,
        n: usize,
    ) -> Vec<(usize, Vec<ActivityRow>)> {
        let mut out = Vec::new();
        runs.visit(n, &mut |c, rows| out.push((c, rows.to_vec())))
            .unwrap();
        out
    }

    #[test]
    fn spilled_rows_come_back_in_the_merged_order() {
        // Part 0 has customers 0 (a purchase and a refund) and 1 (no row), part 1 has
        // customer 0 (one period). Merged order: part 1's customer, then part 0's two.
        let mut spill = ActivitySpill::default();
        spill
            .push(&[row(0, 3, 1.5, 1), row(0, 5, -0.25, 0)])
            .unwrap();
        spill.push(&[row(0, 2, 10.0, 2)]).unwrap();
        let back = spill.read_part(0).unwrap();
        assert_eq!(back, [row(0, 3, 1.5, 1), row(0, 5, -0.25, 0)]);
        let spilled = spill.finish(vec![1, 0, 0]);
        assert_eq!(spilled.min_period, Some(2));
        let visited = collect(&ActivityRuns::Spilled(&spilled), 3);
        assert_eq!(
            visited,
            [
                (0, vec![row(0, 2, 10.0, 2)]),
                (1, vec![row(1, 3, 1.5, 1), row(1, 5, -0.25, 0)]),
                (2, vec![]),
            ]
        );
        // The same rows held give the same visit.
        let held = [row(0, 2, 10.0, 2), row(1, 3, 1.5, 1), row(1, 5, -0.25, 0)];
        assert_eq!(collect(&ActivityRuns::Held(&held), 3), visited);
        assert_eq!(ActivityRuns::Held(&held).min_period(), Some(2));
    }

    #[test]
    fn a_spill_file_cut_inside_a_row_is_an_error() {
        let mut spill = ActivitySpill::default();
        spill.push(&[row(0, 1, 1.0, 1)]).unwrap();
        let path = spill.files[0].path();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..ROW_BYTES - 3]).unwrap();
        let spilled = spill.finish(vec![0]);
        let err = ActivityRuns::Spilled(&spilled)
            .visit(1, &mut |_, _| {})
            .unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");
    }
}
