//! `inspect`: what custmetrics sees in each input file, as a page for the Markdown, CSV and HTML
//! renderers (the terminal keeps [`Inspection::to_text`]'s listing). One row per file, then the
//! columns and problems of every file, each row naming its file, so that the CSV tables stand
//! on their own.

use super::{Block, Page, table};
use crate::io::inspect::Inspection;

/// Lays out the inspections of several files: a table of the files, their columns by role,
/// and the rejected rows and answers when there are some.
pub(crate) fn page(files: &[Inspection]) -> Page<'_> {
    let mut out = Vec::new();
    out.push(Block::Heading("Files".into()));
    out.push(table(
        "files",
        &[
            "file",
            "read as",
            "format",
            "delimiter",
            "encoding",
            "rows read",
            "used",
            "rejected",
            "excluded",
            "answers rejected",
            "customers",
            "first date",
            "last date",
        ],
        &[
            false, false, false, false, false, true, true, true, true, true, true, false, false,
        ],
        files.iter().map(file_row).collect(),
    ));
    for i in files {
        let f = &i.file;
        if f.continuation_rows > 0 {
            out.push(Block::Note(format!(
                "{}: {} rows continue an order of an earlier row.",
                f.file, f.continuation_rows
            )));
        }
        if f.blank_lines > 0 {
            out.push(Block::Note(format!(
                "{}: {} blank lines skipped.",
                f.file, f.blank_lines
            )));
        }
    }
    out.push(Block::Heading("Columns".into()));
    out.push(table(
        "columns",
        &["file", "column", "role", "details"],
        &[false, false, false, false],
        files.iter().flat_map(column_rows).collect(),
    ));
    let problems: Vec<Vec<String>> = files.iter().flat_map(problem_rows).collect();
    if !problems.is_empty() {
        out.push(Block::Heading("Problems".into()));
        out.push(table(
            "problems",
            &["file", "problem", "rejected", "count"],
            &[false, false, false, true],
            problems,
        ));
        out.push(table(
            "first_problems",
            &["first rejected rows and answers"],
            &[false],
            files
                .iter()
                .flat_map(|i| i.problems.iter().map(|p| vec![p.to_string()]))
                .collect(),
        ));
    }
    Page {
        title: "Input files",
        subtitle: None,
        generated_at: None,
        blocks: out,
    }
}

/// A file's row of the `files` table.
fn file_row(i: &Inspection) -> Vec<String> {
    let f = &i.file;
    let a = &i.accounting;
    let format = match &f.sheet {
        Some(sheet) => format!("{} (sheet {sheet})", f.format.name()),
        None => f.format.name().to_string(),
    };
    vec![
        f.file.clone(),
        i.table.to_string(),
        format,
        f.delimiter.clone().unwrap_or_default(),
        f.encoding.map(|e| e.name().to_string()).unwrap_or_default(),
        a.rows_read.to_string(),
        a.rows_used.to_string(),
        a.rows_rejected.to_string(),
        a.rows_excluded.to_string(),
        a.answers_rejected.to_string(),
        i.customers.to_string(),
        i.first_date.clone().unwrap_or_default(),
        i.last_date.clone().unwrap_or_default(),
    ]
}

/// A file's columns by role, the score roles without a column (with the columns that look like
/// their answers), and its dimensions.
fn column_rows(i: &Inspection) -> Vec<Vec<String>> {
    let f = &i.file;
    let mut rows: Vec<Vec<String>> = f
        .columns
        .roles
        .iter()
        .map(|(role, column)| {
            vec![
                f.file.clone(),
                column.clone(),
                role.describe().to_string(),
                i.column_details(*role, column).trim_start().to_string(),
            ]
        })
        .collect();
    for (role, candidates) in &f.columns.alternatives {
        if f.columns.column(*role).is_none() {
            let names: Vec<String> = candidates.iter().map(|c| format!("{c:?}")).collect();
            rows.push(vec![
                f.file.clone(),
                String::new(),
                role.describe().to_string(),
                format!(
                    "no column; possible: {} (set {})",
                    names.join(", "),
                    role.flag()
                ),
            ]);
        }
    }
    for d in &f.columns.dimensions {
        rows.push(vec![
            f.file.clone(),
            d.clone(),
            "dimension".into(),
            String::new(),
        ]);
    }
    rows
}

/// A file's rejected rows and answers, counted by reason.
fn problem_rows(i: &Inspection) -> Vec<Vec<String>> {
    let a = &i.accounting;
    let file = &i.file.file;
    a.rejected_by_reason
        .iter()
        .map(|(k, v)| vec![file.clone(), k.clone(), "rows".into(), v.to_string()])
        .chain(a.answers_rejected_by_reason.iter().map(|(k, v)| {
            vec![
                file.clone(),
                k.clone(),
                "answers (rows used)".into(),
                v.to_string(),
            ]
        }))
        .collect()
}
