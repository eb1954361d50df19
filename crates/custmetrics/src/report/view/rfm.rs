//! RFM: segment sizes, segments per dimension, and the per-customer scores.

use super::{Block, Chart, Fmt, Plot, ValueFormat, put_int, put_text, table, table_on_demand};
use crate::metrics::rfm::{Rfm, RfmSegment};
use crate::report::Section;

/// The segment table, the segments by dimension when split, and the per-customer table (its
/// rows formatted on demand: there may be millions), and a bar chart of the segment sizes.
pub(super) fn view<'r>(rfm: &'r Rfm, fm: Fmt, out: &mut Vec<Block<'r>>) {
    out.push(Block::Heading("RFM segments".into()));
    let total: u64 = rfm.segments.values().sum();
    out.push(table(
        "rfm_segments",
        &["segment", "customers", "share"],
        &[false, true, true],
        rfm.segments
            .iter()
            .map(|(k, v)| {
                vec![
                    k.clone(),
                    v.to_string(),
                    fm.pct(*v as f64 / total.max(1) as f64),
                ]
            })
            .collect(),
    ));
    if let Some(first) = rfm.by_segment.first() {
        let dim = first.dimension.clone();
        out.push(table(
            "rfm_segments_by_segment",
            &[dim.as_str(), "RFM segment", "customers"],
            &[false, false, true],
            rfm.by_segment
                .iter()
                .map(|g| {
                    vec![
                        g.segment.clone(),
                        g.rfm_segment.clone(),
                        g.customers.to_string(),
                    ]
                })
                .collect(),
        ));
    }
    if !rfm.customers.is_empty() {
        let customers = &rfm.customers;
        out.push(table_on_demand(
            "rfm_customers",
            &[
                "customer_id",
                "frequency",
                "recency",
                "T",
                "monetary_value",
                "r",
                "f",
                "m",
                "segment",
            ],
            &[false, true, true, true, true, true, true, true, false],
            customers.len(),
            move |i, cells| {
                let (Some(c), [id, frequency, recency, t, monetary, r, f, m, segment]) =
                    (customers.get(i), cells)
                else {
                    return;
                };
                put_text(id, c.customer_id.as_str());
                put_int(frequency, c.frequency);
                fm.put_num(recency, c.recency, 2);
                fm.put_num(t, c.t, 2);
                fm.put_num(monetary, c.monetary_value, 2);
                put_int(r, c.r_score);
                put_int(f, c.f_score);
                put_int(m, c.m_score);
                put_text(segment, c.segment.map_or("", RfmSegment::name));
            },
        ));
    }
    out.push(Block::Chart(Chart {
        section: Section::Rfm,
        caption: "RFM segment sizes (customers)".into(),
        title: "RFM segments".into(),
        plot: Plot::Bars {
            bars: rfm
                .segments
                .iter()
                .map(|(k, v)| (k.clone(), *v as f64))
                .collect(),
            format: ValueFormat::Number(0),
        },
    }));
}
