//! Money: amounts summed exactly, in millionths of the currency unit, so that totals do not
//! depend on row order or on how the input is split into files or partitions (floating-point
//! addition is not associative), and print as the cents they are.

use polars::prelude::*;

/// Sums money exactly, in millionths of the currency unit, so that totals do not depend on row
/// order or on how the input is split into files (floating-point addition is not associative).
pub fn exact_sum(e: Expr) -> Expr {
    (e * lit(1e6))
        .round(0, RoundMode::HalfToEven)
        .cast(DataType::Int64)
        .sum()
        .cast(DataType::Float64)
        / lit(1e6)
}

/// Money in millionths of the currency unit, rounded half to even: integer sums do not depend on
/// row order or on how the input is split into files, as floating-point sums would.
pub(crate) fn to_micros(amount: f64) -> i64 {
    // `as` saturates; amounts beyond ±9.2 trillion are not money this tool will meet.
    (amount * 1e6).round_ties_even() as i64
}

pub(crate) fn from_micros(micros: i64) -> f64 {
    micros as f64 / 1e6
}

/// Sums amounts of money exactly (in millionths), so that a total prints as the cents it is
/// (593935.93, not 593935.9299999991) whatever the order of its terms.
pub fn exact_total(amounts: impl IntoIterator<Item = f64>) -> f64 {
    from_micros(amounts.into_iter().map(to_micros).sum())
}

/// The mean of `n` amounts of money that sum to `total − part`, with the difference taken
/// exactly (in millionths): the repeat spend 106.77 − 64.78 over one occasion is 41.99, not
/// the 41.989999999999995 that subtracting the floats gives.
pub(crate) fn money_mean_of_difference(total: f64, part: f64, n: u32) -> f64 {
    (to_micros(total) - to_micros(part)) as f64 / f64::from(n.max(1)) / 1e6
}
