//! Stage 1 over transactions read one customer partition at a time (`--partitions`).

use super::prepare::{Stage1Options, purchases};
use super::summarise::summarise_parts;
use super::{PartitionMerger, SpilledActivity, Summaries};
use crate::io::table::merge_partition_tables;
use crate::io::{Dataset, DeferredTransactions, Table};
use crate::{Error, Result};

/// The merged summaries of the partitions, and their activity rows when left on disk.
pub(super) type MergedPurchases = (Summaries, Option<SpilledActivity>);

/// Stage 1 over transactions read one customer partition at a time: each partition is
/// loaded, summarised and released before the next, so that only a partition's rows (and
/// stage 1's working memory for them) are held; the parts then merge exactly
/// ([`super::merge_partitions`]). Returns the transactions' accounting (a table without
/// rows, with every partition's rows, rejections and file details) and the purchase
/// summaries (`None` when no row was usable). With more than one partition, the summaries'
/// activity rows are left on disk ([`SpilledActivity`]), read back customer by customer by the
/// sections that need them.
pub(super) fn partitioned_stage_one(
    data: &Dataset,
    deferred: DeferredTransactions,
    options: &Stage1Options,
) -> Result<(Table, Option<MergedPurchases>)> {
    let unsupported = |what: &str| Error::InvalidSetting {
        setting: "partitions".into(),
        message: format!(
            "{what} needs the transactions loaded whole; read them in one partition (drop --partitions)"
        ),
    };
    if options.holdout_from.is_some() {
        return Err(unsupported("a CLV holdout (--holdout-from)"));
    }
    if options.activity_from_interactions && data.interactions.is_some() {
        return Err(unsupported("activity from interactions (--active-on any)"));
    }
    let customers_frame = data.customers.as_ref().map(|t| &t.frame);
    let count = deferred.partitions();
    let mut accounting: Option<Table> = None;
    let mut merged = match count {
        0 | 1 => PartitionMerger::new(1),
        _ => PartitionMerger::spilling_activity(count as usize),
    };
    let mut summarised = false;
    let mut no_rows_left = None;
    for index in 0..count {
        let mut table = deferred.load_partition(index)?;
        if index == 0 {
            let with_transactions = Dataset {
                transactions: Some(table.clone()),
                interactions: data.interactions.clone(),
                customers: data.customers.clone(),
                deferred_transactions: None,
            };
            with_transactions.check_preferred_columns(&deferred.spec)?;
        }
        let frame = std::mem::take(&mut table.frame);
        table.frame = frame.clear();
        if frame.height() > 0 {
            let (lf, by) = purchases(frame, customers_frame, options)?;
            match summarise_parts(lf, options.period, options.as_of, &by, options.parts) {
                Ok(part) => {
                    merged.push(part)?;
                    summarised = true;
                }
                // A partition whose rows all fall outside the dates adds nothing; the error
                // stands only if every partition says so.
                Err(e @ Error::InsufficientData { .. }) => no_rows_left = Some(e),
                Err(e) => return Err(e),
            }
        }
        accounting = Some(match accounting {
            None => table,
            Some(acc) => merge_partition_tables(acc, table)?,
        });
    }
    // The source is done with: released before the merge's own peak (it held a store's every
    // customer id when the partitions read them up front, 0.6 GB at 26M customers).
    drop(deferred);
    let Some(mut table) = accounting else {
        return Err(Error::InvalidSetting {
            setting: "partitions".into(),
            message: "needs at least one partition".into(),
        });
    };
    // In file order, as when the table is loaded whole.
    let file_index = |file: &str| table.files.iter().position(|f| f.file == file);
    let mut rejections = std::mem::take(&mut table.rejections);
    rejections.sort_by_cached_key(|r| (file_index(&r.file), r.row));
    table.rejections = rejections;
    let summaries = match (summarised, no_rows_left) {
        (false, Some(e)) => return Err(e),
        (false, None) => None,
        (true, _) => Some(merged.finish_spilled()?),
    };
    Ok((table, summaries))
}
