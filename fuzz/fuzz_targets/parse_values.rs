//! Value parsers on arbitrary text: dates in every format, amounts with both decimal separators,
//! scores. Never a panic; accepted values are in range.
#![no_main]

use custmetrics::io::parse::{
    DateFormat, DecimalSeparator, parse_amount, parse_csat, parse_date, parse_nps,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    for f in [
        DateFormat::YearMonthDay,
        DateFormat::MonthDayYear,
        DateFormat::DayMonthYear,
        DateFormat::Custom("%d %b %Y".into()),
    ] {
        let _ = parse_date(s, &f);
    }
    if let Ok(f) = DateFormat::from_setting(s) {
        let _ = parse_date("2024-01-02", &f);
    }
    for d in [DecimalSeparator::Point, DecimalSeparator::Comma] {
        if let Ok(v) = parse_amount(s, d) {
            assert!(v.is_finite());
        }
    }
    if let Ok(Some(n)) = parse_nps(s) {
        assert!(n <= 10);
    }
    if let Ok(Some(c)) = parse_csat(s, 5) {
        assert!((1..=5).contains(&c));
    }
});
