//! NPS and CSAT from survey answers, with confidence intervals and a small-sample flag.
//!
//! **NPS** (Reichheld, "The One Number You Need to Grow", HBR 2003): promoters answer 9–10,
//! passives 7–8, detractors 0–6; NPS = 100 · (P − D) / n over non-blank answers, in [−100, 100].
//! Its variance follows from the trinomial distribution of (P, passives, D):
//! Var(p_P − p_D) = (p_P + p_D − (p_P − p_D)²) / n. The 95% interval is Rocks' adjusted Wald
//! (Rocks, "Interval Estimation for the Net Promoter Score", The American Statistician 70(4),
//! 2016): with ñ = n + 3, p̃_P = (P + ¾) / ñ and p̃_D = (D + ¾) / ñ, it is
//! 100 · (p̃_P − p̃_D) ± 1.959964 · 100 · √((p̃_P + p̃_D − (p̃_P − p̃_D)²) / ñ), clipped to
//! [−100, 100] and widened, if needed, to contain the NPS itself (only at n = 1).
//!
//! **CSAT** (ACSI / common practice): share of satisfied answers (4–5 on 1–5 by default, i.e. the
//! top two boxes), with a Wilson score interval (Wilson 1927; Agresti & Coull 1998 recommend it
//! over the normal interval for small n and rates near 0 or 1), plus the mean score.
//!
//! **Small samples**: a figure is flagged `low_sample` when it rests on fewer than
//! `min_responses` answers (default 30). At n = 30 the NPS 95% interval is about ±30 points for a
//! typical answer mix, so a month-over-month change of that size is noise.

use polars::prelude::LazyFrame;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

use crate::Result;
pub use crate::summary::scores::{ScoreOptions, SurveyCounts, survey_counts};

/// z for a two-sided 95% interval.
fn z95() -> f64 {
    Normal::standard().inverse_cdf(0.975)
}

/// An NPS figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nps {
    /// Period label when split by period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// Segment value when split by a dimension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// NPS in [−100, 100].
    pub score: f64,
    /// Answers 9–10.
    pub promoters: u64,
    /// Answers 7–8.
    pub passives: u64,
    /// Answers 0–6.
    pub detractors: u64,
    /// Non-blank answers.
    pub responses: u64,
    /// Lower bound of the 95% interval.
    pub ci_low: f64,
    /// Upper bound of the 95% interval.
    pub ci_high: f64,
    /// Fewer answers than `min_responses`.
    pub low_sample: bool,
}

impl Nps {
    /// NPS from counts of answers 0..=10.
    pub fn from_counts(counts: &[u64; 11], min_responses: u64) -> Option<Nps> {
        let n: u64 = counts.iter().sum();
        if n == 0 {
            return None;
        }
        let promoters = counts[9] + counts[10];
        let passives = counts[7] + counts[8];
        let detractors = n - promoters - passives;
        let score = 100.0 * (promoters as f64 - detractors as f64) / n as f64;
        let (ci_low, ci_high) = nps_adjusted_wald(promoters, detractors, n);
        Some(Nps {
            period: None,
            segment: None,
            score,
            promoters,
            passives,
            detractors,
            responses: n,
            // The adjusted interval can miss a lone answer's ±100 (n = 1); keep the estimate in.
            ci_low: ci_low.min(score),
            ci_high: ci_high.max(score),
            low_sample: n < min_responses,
        })
    }
}

/// A CSAT figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Csat {
    /// Period label when split by period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// Segment value when split by a dimension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Share of satisfied answers, in [0, 1].
    pub score: f64,
    /// Mean answer.
    pub mean: f64,
    /// Satisfied answers.
    pub satisfied: u64,
    /// Non-blank answers.
    pub responses: u64,
    /// Wilson 95% lower bound.
    pub ci_low: f64,
    /// Wilson 95% upper bound.
    pub ci_high: f64,
    /// Fewer answers than `min_responses`.
    pub low_sample: bool,
}

impl Csat {
    /// CSAT from counts of answers, `counts[k]` = answers equal to k (index 0 unused).
    pub fn from_counts(counts: &[u64], satisfied_from: u8, min_responses: u64) -> Option<Csat> {
        let n: u64 = counts.iter().sum();
        if n == 0 {
            return None;
        }
        let satisfied: u64 = counts.iter().skip(usize::from(satisfied_from)).sum();
        let total: f64 = counts
            .iter()
            .enumerate()
            .map(|(k, &c)| k as f64 * c as f64)
            .sum();
        let (lo, hi) = wilson(satisfied, n);
        Some(Csat {
            period: None,
            segment: None,
            score: satisfied as f64 / n as f64,
            mean: total / n as f64,
            satisfied,
            responses: n,
            ci_low: lo,
            ci_high: hi,
            low_sample: n < min_responses,
        })
    }
}

/// The adjusted Wald 95% interval of the NPS (Rocks 2016), on the −100..100 scale, clipped:
/// three pseudo-answers (¾ promoter, ¾ detractor, 1½ passive) are added before the trinomial
/// variance is taken, which keeps the coverage near 95% for n ≥ 10 where the plain Wald
/// interval falls to 90% for skewed answer mixes at n = 30 (docs/metrics.md has the figures).
pub fn nps_adjusted_wald(promoters: u64, detractors: u64, n: u64) -> (f64, f64) {
    let m = n as f64 + 3.0;
    let (pp, pd) = (
        (promoters as f64 + 0.75) / m,
        (detractors as f64 + 0.75) / m,
    );
    let var = ((pp + pd) - (pp - pd).powi(2)).max(0.0) / m;
    let centre = 100.0 * (pp - pd);
    let half = 100.0 * z95() * var.sqrt();
    ((centre - half).max(-100.0), (centre + half).min(100.0))
}

/// Wilson score interval (95%) for `k` successes in `n` trials.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = z95();
    let (n, p) = (n as f64, k as f64 / n as f64);
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Survey results: overall, per period, per segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurveyScores {
    /// Overall NPS, if there are NPS answers.
    pub nps: Option<Nps>,
    /// Overall CSAT, if there are CSAT answers.
    pub csat: Option<Csat>,
    /// NPS by period, then by segment.
    pub nps_by: Vec<Nps>,
    /// CSAT by period, then by segment.
    pub csat_by: Vec<Csat>,
    /// The answers threshold used for `low_sample`.
    pub min_responses: u64,
}

/// Computes NPS and CSAT from a canonical interactions frame: stage 1's answer counts
/// ([`survey_counts`]), then [`scores_from_counts`].
///
/// # Errors
/// [`Error::UnknownColumn`](crate::Error::UnknownColumn) when `by` is not a column of the
/// interactions.
pub fn survey_scores(interactions: LazyFrame, options: &ScoreOptions) -> Result<SurveyScores> {
    Ok(scores_from_counts(&survey_counts(interactions, options)?))
}

/// NPS and CSAT, overall and per split, from the answer counts of stage 1.
pub fn scores_from_counts(counts: &SurveyCounts) -> SurveyScores {
    let options = &counts.options;
    let mut result = SurveyScores {
        nps: None,
        csat: None,
        nps_by: vec![],
        csat_by: vec![],
        min_responses: options.min_responses,
    };
    let label = |p: Option<i32>| p.and_then(|p| options.period.map(|per| per.label(p)));
    if let Some(tallies) = &counts.nps {
        let to_nps = |counts: &Vec<u64>| {
            let mut arr = [0u64; 11];
            for (a, c) in arr.iter_mut().zip(counts) {
                *a = *c;
            }
            Nps::from_counts(&arr, options.min_responses)
        };
        result.nps = tallies.overall.values().next().and_then(to_nps);
        for split in &tallies.splits {
            for ((p, seg), counts) in split {
                if let Some(mut n) = to_nps(counts) {
                    n.period = label(*p);
                    n.segment = seg.clone();
                    result.nps_by.push(n);
                }
            }
        }
    }
    if let Some(tallies) = &counts.csat {
        let to_csat = |counts: &Vec<u64>| {
            let upto = usize::from(options.csat_scale) + 1;
            Csat::from_counts(
                counts.get(..upto).unwrap_or(counts),
                options.csat_satisfied_from,
                options.min_responses,
            )
        };
        result.csat = tallies.overall.values().next().and_then(to_csat);
        for split in &tallies.splits {
            for ((p, seg), counts) in split {
                if let Some(mut c) = to_csat(counts) {
                    c.period = label(*p);
                    c.segment = seg.clone();
                    result.csat_by.push(c);
                }
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn nps_by_hand() {
        // 10 answers: 5 promoters (9,9,10,10,10), 3 passives (7,8,8), 2 detractors (0,6).
        let mut c = [0u64; 11];
        for s in [9, 9, 10, 10, 10, 7, 8, 8, 0, 6] {
            c[s] += 1;
        }
        let n = Nps::from_counts(&c, 30).unwrap();
        assert_eq!(
            (n.promoters, n.passives, n.detractors, n.responses),
            (5, 3, 2, 10)
        );
        assert_relative_eq!(n.score, 30.0);
        // Adjusted Wald: ñ = 13, p̃_P = 5.75/13, p̃_D = 2.75/13, centre = 100·3/13 = 23.0769;
        // Var = (8.5/13 − (3/13)²)/13 = 0.0461994; half-width = 100·1.959964·√Var = 42.1275.
        assert_relative_eq!(n.ci_low, 23.076923 - 42.127539, epsilon = 1e-4);
        assert_relative_eq!(n.ci_high, 23.076923 + 42.127539, epsilon = 1e-4);
        assert!(n.low_sample);
    }

    #[test]
    fn csat_by_hand() {
        // Answers 1..5 with counts 1,1,2,3,3: satisfied (4–5) = 6 of 10; mean = 3.6.
        let counts = [0u64, 1, 1, 2, 3, 3];
        let c = Csat::from_counts(&counts, 4, 5).unwrap();
        assert_relative_eq!(c.score, 0.6);
        assert_relative_eq!(c.mean, 3.6);
        // Wilson(6, 10) = (0.31267, 0.83182), a textbook value (Newcombe 1998, method 3).
        assert_relative_eq!(c.ci_low, 0.312670, epsilon = 1e-5);
        assert_relative_eq!(c.ci_high, 0.831821, epsilon = 1e-5);
        assert!(!c.low_sample);
    }

    proptest::proptest! {
        #[test]
        fn nps_bounds_and_counts(counts in proptest::array::uniform11(0u64..50)) {
            if let Some(n) = Nps::from_counts(&counts, 30) {
                proptest::prop_assert!((-100.0..=100.0).contains(&n.score));
                proptest::prop_assert!(n.ci_low <= n.score + 1e-9 && n.score <= n.ci_high + 1e-9);
                proptest::prop_assert_eq!(n.promoters + n.passives + n.detractors, n.responses);
                proptest::prop_assert_eq!(n.responses, counts.iter().sum::<u64>());
            }
        }

        #[test]
        fn wilson_contains_the_rate(k in 0u64..200, extra in 0u64..200) {
            let n = k + extra;
            if n > 0 {
                let (lo, hi) = wilson(k, n);
                let p = k as f64 / n as f64;
                proptest::prop_assert!(lo <= p + 1e-12 && p <= hi + 1e-12 && lo >= 0.0 && hi <= 1.0);
            }
        }
    }
}
