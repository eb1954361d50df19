//! Stage 1 for survey answers: counts per (period, segment, answer), a tiny table from which
//! stage 2 computes NPS and CSAT ([`crate::metrics::scores`]) without the interaction rows.

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::Result;
use crate::io::col;
use crate::period::Period;

/// Options for survey scores.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScoreOptions {
    /// Period to split by (`None`: only the overall figure).
    pub period: Option<Period>,
    /// Dimension to split by (an interactions column such as `channel`, or `None`).
    pub by: Option<String>,
    /// Top of the CSAT scale.
    pub csat_scale: u8,
    /// Lowest CSAT answer that counts as satisfied (default: scale − 1).
    pub csat_satisfied_from: u8,
    /// Answers below this count are flagged.
    pub min_responses: u64,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            period: None,
            by: None,
            csat_scale: 5,
            csat_satisfied_from: 4,
            min_responses: 30,
        }
    }
}

/// Answer counts (index = score) per (period index, segment value).
pub type ScoreCounts = BTreeMap<(Option<i32>, Option<String>), Vec<u64>>;

/// Stage 1 for scores: counts per (period, segment, score), a tiny table.
fn score_counts(
    interactions: LazyFrame,
    score: &str,
    options: &ScoreOptions,
) -> Result<ScoreCounts> {
    let mut keys = vec![col(score).alias("score")];
    if let Some(p) = options.period {
        keys.push(p.index_expr(col(col::DATE)).alias("period"));
    }
    if let Some(b) = &options.by {
        keys.push(col(b.as_str()).cast(DataType::String).alias("segment"));
    }
    // A table read back from a summary store counts answers by weight.
    let mut interactions = interactions;
    let count = match interactions.collect_schema()?.get(col::ANSWERS) {
        Some(_) => col(col::ANSWERS).cast(DataType::UInt64).sum(),
        None => len().cast(DataType::UInt64),
    };
    let df = interactions
        .filter(col(score).is_not_null())
        .group_by(keys)
        .agg([count.alias("n")])
        .collect()?;
    let scores = df.column("score")?.cast(&DataType::Int32)?;
    let scores = scores.i32()?;
    let n = df.column("n")?.u64()?;
    let periods = match df.column("period") {
        Ok(c) => Some(c.i32()?.clone()),
        Err(_) => None,
    };
    let segments = match df.column("segment") {
        Ok(c) => Some(c.str()?.clone()),
        Err(_) => None,
    };
    let width = usize::from(options.csat_scale.max(10)) + 1;
    let mut out: ScoreCounts = BTreeMap::new();
    for i in 0..df.height() {
        let key = (
            periods.as_ref().and_then(|p| p.get(i)),
            segments.as_ref().and_then(|s| s.get(i).map(str::to_string)),
        );
        let counts = out.entry(key).or_insert_with(|| vec![0; width]);
        if let (Some(s), Some(c)) = (scores.get(i), n.get(i))
            && let Some(slot) = usize::try_from(s).ok().and_then(|s| counts.get_mut(s))
        {
            *slot += c;
        }
    }
    Ok(out)
}

/// One score's answer counts: overall (a single cell) and per split (by period over all
/// segments, then by segment over all periods, as reported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreTallies {
    /// The counts over every answer.
    pub overall: ScoreCounts,
    /// The counts per split, in report order.
    pub splits: Vec<ScoreCounts>,
}

/// The answer counts of a survey table, with the options that shaped them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyCounts {
    /// NPS answer counts, when the interactions have an NPS column.
    pub nps: Option<ScoreTallies>,
    /// CSAT answer counts, when the interactions have a CSAT column.
    pub csat: Option<ScoreTallies>,
    /// The options the counts were made with (the splits, the scale, the thresholds).
    pub options: ScoreOptions,
}

/// Counts the answers of a canonical interactions frame, overall and per split.
///
/// # Errors
/// [`Error::UnknownColumn`](crate::Error::UnknownColumn) when `by` is not a column of the interactions.
pub fn survey_counts(interactions: LazyFrame, options: &ScoreOptions) -> Result<SurveyCounts> {
    let mut lf = interactions;
    let schema = lf.collect_schema()?;
    if let Some(b) = &options.by
        && schema.get(b.as_str()).is_none()
    {
        return Err(super::unknown_by_column("interactions", b, &schema));
    }
    let overall = ScoreOptions {
        period: None,
        by: None,
        ..options.clone()
    };
    // Splits reported: by period (all segments), then by segment (all periods). The cross
    // product would mostly be cells too small to read.
    let mut splits = Vec::new();
    if options.period.is_some() {
        splits.push(ScoreOptions {
            by: None,
            ..options.clone()
        });
    }
    if options.by.is_some() {
        splits.push(ScoreOptions {
            period: None,
            ..options.clone()
        });
    }
    let tallies = |score: &str| -> Result<Option<ScoreTallies>> {
        if schema.get(score).is_none() {
            return Ok(None);
        }
        let overall_counts = score_counts(lf.clone(), score, &overall)?;
        let split_counts = splits
            .iter()
            .map(|split| score_counts(lf.clone(), score, split))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(ScoreTallies {
            overall: overall_counts,
            splits: split_counts,
        }))
    };
    Ok(SurveyCounts {
        nps: tallies(col::NPS)?,
        csat: tallies(col::CSAT)?,
        options: options.clone(),
    })
}
